"""Start lisp_app: validate the site config, then run os-ken's OpenFlow controller with the LISP app.

    lisp-controller --config site.yaml [os-ken options, e.g. --ofp-tcp-listen-port 6653]
    python -m lisp_app --config site.yaml ...      (the same)
    run_controller.py --config site.yaml ...       (the same, from a checkout)

Exit status: 0 after SIGTERM/SIGINT; 2 for a bad config; 3 when the classic-LISP programs cannot
be attached; 4 when the REST API's address is taken (another controller on the same port).

SIGHUP re-reads the config file and applies what changed without a restart, or logs why not and
keeps the running one (lisp_app/node/reload.py; `kill -HUP <pid>`, `systemctl reload`).

A Map-Server/Map-Resolver without an ALT and without a switch (role ms-mr, no alt:, no underlay:)
runs without os-ken: it serves UDP 4342 itself (lisp_app/standalone.py).

os-ken 4.x has no osken-manager; this script builds the AppManager itself. The eventlet hub with a
full monkey_patch() comes first: under os-ken's native hub timeouts and thread kills do not work.
"""

import warnings

warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")  # it starts with a newline
# eventlet imports dnspython, whose DSA support newer cryptography releases deprecate: noise at
# every start, about code lisp_app never runs
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"dns\.")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import os  # noqa: E402

os.environ.setdefault("OSKEN_HUB_TYPE", "eventlet")

import argparse  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

from lisp_app import __version__  # noqa: E402

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lisp-controller",
                                     description=__doc__.splitlines()[0], add_help=True)
    parser.add_argument("--version", action="version", version=f"lisp_app {__version__}")
    parser.add_argument("--config", required=True, help="site configuration (YAML)")
    parser.add_argument("--check", action="store_true",
                        help="validate the configuration and exit (0: valid, 2: not), starting "
                             "nothing")
    parser.add_argument("--skip-classic-attach", action="store_true",
                        help="the classic-LISP programs are attached on the xTR host by "
                        "`python -m lisp_app.classic attach` (a controller elsewhere)")
    args, osken_args = parser.parse_known_args(argv)

    from lisp_app.config import ConfigError, load_config, switchless_server
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"lisp_app: {exc}", file=sys.stderr)
        return 2
    from lisp_app.config import exposure_warning, secret_fields
    try:
        exposed = exposure_warning(args.config, os.stat(args.config).st_mode, secret_fields(config))
    except OSError:
        exposed = None
    if exposed:
        print(f"lisp_app: WARNING: {exposed}", file=sys.stderr, flush=True)
    if args.check:
        print(f"lisp_app: {args.config}: valid ({config.role})")
        return 0
    if switchless_server(config):  # a Map-Server/Map-Resolver on its own UDP sockets: no OpenFlow
        from lisp_app.standalone import run
        return run(config)
    # from here on SIGHUP asks for a reload (lisp_app.node.reload) and never kills
    from lisp_app.shell.hangup import ReloadRequests
    reloads = ReloadRequests()
    signal.signal(signal.SIGHUP, reloads.ask)
    config_path = os.path.abspath(args.config)

    # the API's address first: a second controller on the same port must not start at all
    api_socket = None
    if config.api.port:
        from lisp_app.api.server import ApiAddressInUse, listen
        try:
            api_socket = listen(config.api.host, config.api.port)
        except ApiAddressInUse as exc:
            print(f"lisp_app: {exc}", file=sys.stderr)
            return 4

    # Classic RFC 9300 data packets (lisp_app.classic): the uplink's eBPF programs, attached before
    # the switch connects and removed on exit; without them the site would silently drop classic
    # traffic, so a failure stops here unless the config accepts LISP-GPE only.
    from lisp_app.classic import ClassicError, ClassicPath
    classic = None if args.skip_classic_attach else ClassicPath.for_config(config)
    if classic is not None:
        try:
            classic.attach()
        except ClassicError as exc:
            print(f"lisp_app: {exc}", file=sys.stderr)
            return 3
        print(f"lisp_app: {classic.summary()}", file=sys.stderr, flush=True)  # before logging
    # how fast the bridges call back after a restart (lisp_app.ovsdb): set before we listen
    if config.ovsdb.remote and config.lisp_bridge is not None and config.underlay is not None:
        from lisp_app.ovsdb import OvsdbError, configure
        try:
            done = configure(config.ovsdb.remote, [config.lisp_bridge.datapath_id,
                                                   config.underlay.datapath_id],
                             config.ovsdb.max_backoff, config.ovsdb.inactivity_probe)
            print(f"lisp_app: {done}", file=sys.stderr, flush=True)
        except OvsdbError as exc:
            print(f"lisp_app: WARNING: ovsdb: {exc}: the bridges reconnect at their own pace",
                  file=sys.stderr, flush=True)
    try:
        return _run(config, classic, osken_args, api_socket, config_path, reloads)
    finally:
        if classic is not None:
            classic.detach()


def _run(config, classic, osken_args, api_socket, config_path=None, reloads=None) -> int:
    from os_ken import cfg, log
    from os_ken.base.app_manager import AppManager
    from os_ken.controller import controller  # noqa: F401  (registers the --ofp-* options)
    from os_ken.lib import hub

    cfg.CONF(args=osken_args, project="os_ken")
    log.init_log()
    import logging
    line = logging.Formatter(LOG_FORMAT)  # time, level and logger on every line
    for handler in logging.getLogger().handlers:
        handler.setFormatter(line)
    manager = AppManager.get_instance()
    manager.load_apps(["lisp_app.app"])
    contexts = manager.create_contexts()
    contexts["lisp_config"] = config
    contexts["lisp_classic"] = classic
    contexts["lisp_api_socket"] = api_socket
    contexts["lisp_config_path"] = config_path
    contexts["lisp_reload_requests"] = reloads
    services = [s for s in manager.instantiate_apps(**contexts) if s is not None]
    logging.getLogger("lisp_app").info(
        "controller started: OpenFlow on %s port %s", cfg.CONF.ofp_listen_host or "0.0.0.0",
        cfg.CONF.ofp_tcp_listen_port or "6653 and 6633")

    def shutdown():
        try:
            manager.close()
        finally:
            if classic is not None:
                classic.detach()
            os._exit(0)

    def stop(_signum, _frame):
        hub.spawn(shutdown)  # not in the signal handler: it runs inside the hub's main loop

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        hub.joinall(services)
    finally:
        manager.close()
    return 0
