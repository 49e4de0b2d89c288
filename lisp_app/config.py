"""Site configuration: a YAML file -> validated, frozen objects.

The schema is the dataclasses below: each field's type says how a value is read, its metadata
holds the documentation and the allowed range. A bad file raises :class:`ConfigError` naming the
file, the key path (``eid_prefixes[0].locators[1].priority``) and the reason; nothing starts.
Unknown keys are errors too (a typo must not silently fall back to a default).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from pathlib import Path

import yaml

from .config_reader import ConfigError, Reader  # noqa: F401  (ConfigError is ours to raise)
from .protocol.addresses import EidPrefix

ROLES = ("itr", "etr", "xtr", "ms-mr")  # ms-mr: only the Map-Server / Map-Resolver roles


def _doc(text: str, **kw) -> dict:
    return {"doc": text, **kw}


@dataclass(frozen=True)
class LocatorConfig:
    """One RLOC of a local EID prefix, as Map-Replies and Map-Registers announce it."""

    rloc: IPv4Address | IPv6Address = field(metadata=_doc("the locator's address"))
    priority: int = field(default=1, metadata=_doc(
        "unicast priority, lower is preferred; 255 means do not use", min=0, max=255))
    weight: int = field(default=100, metadata=_doc(
        "unicast weight among locators of the same priority", min=0, max=255))


@dataclass(frozen=True)
class EidPrefixConfig:
    """A local EID prefix: the site's own address space, served by this ETR."""

    prefix: EidPrefix = field(metadata=_doc(
        "the prefix, as `10.1.0.0/24` or `[iid]10.1.0.0/24`; without [iid] the site's "
        "instance_id applies"))
    locators: tuple[LocatorConfig, ...] = field(default=(), metadata=_doc(
        "the prefix's locators; empty means the underlay RLOC, priority 1, weight 100"))
    ttl: int = field(default=1440, metadata=_doc(
        "record TTL in minutes sent in Map-Replies", min=1, max=0xFFFFFFFF))


@dataclass(frozen=True)
class SitePortConfig:
    """A port towards the site's hosts; its packets belong to one instance-id."""

    name: str = field(metadata=_doc("the OVS port name"))
    instance_id: int | None = field(default=None, metadata=_doc(
        "instance-id of this port's traffic; default: the site's instance_id", min=0,
        max=2**24 - 1))


@dataclass(frozen=True)
class LispBridgeConfig:
    """The OVS bridge that holds the site ports and the LISP-GPE tunnel port."""

    datapath_id: int = field(metadata=_doc("the bridge's datapath id (number or hex string)",
                                           min=0, max=2**64 - 1))
    site_ports: tuple[SitePortConfig, ...] = field(
        default=(SitePortConfig("site"),), metadata=_doc("ports towards the site's hosts"))
    gpe_port: str = field(default="gpe", metadata=_doc(
        "name of the VXLAN-GPE port on UDP 4341 (options:exts=gpe, packet_type=legacy_l3)"))
    native_port: str | None = field(default=None, metadata=_doc(
        "a patch port to the underlay bridge (its peer: underlay.native_port) that carries "
        "natively-forwarded traffic, unencapsulated; without it natively-forward mappings "
        "drop (see natively_forward)", pattern=r"^[^\s/]{1,15}$"))


@dataclass(frozen=True)
class UnderlayConfig:
    """The OVS bridge facing the underlay; its LOCAL port holds the RLOC."""

    datapath_id: int = field(metadata=_doc("the bridge's datapath id", min=0, max=2**64 - 1))
    rloc: IPv4Address = field(metadata=_doc("this xTR's RLOC (on the bridge's LOCAL port)"))
    next_hop: IPv4Address = field(metadata=_doc("the underlay router the RLOC routes through"))
    uplink_port: str = field(default="uplink", metadata=_doc("port name towards the underlay"))
    native_port: str | None = field(default=None, metadata=_doc(
        "the patch port's peer on this bridge (see lisp_bridge.native_port); natively-forwarded "
        "packets go to this bridge's LOCAL port, whose host routes them (it must forward IP)",
        pattern=r"^[^\s/]{1,15}$"))
    rloc_ipv6: IPv6Address | None = field(default=None, metadata=_doc(
        "an IPv6 RLOC on the same LOCAL port (routed by the namespace's kernel routes); with it, "
        "mappings may use IPv6 locators"))
    next_hop_ipv6: IPv6Address | None = field(default=None, metadata=_doc(
        "the IPv6 underlay next hop (needed with rloc_ipv6): the controller resolves it so that "
        "OVS's tunnelling knows its MAC before the first packet"))
    mtu: int = field(default=1500, metadata=_doc(
        "underlay path MTU; larger encapsulated packets are refused with ICMP", min=576,
        max=65535))
    encapsulation: str = field(default="gpe", metadata=_doc(
        "the data header the ITR sends: `gpe` (LISP-GPE, RFC 9305: I and P bits, what OVS's GPE "
        "port sends; RFC 9300 ETRs that treat the P bit as reserved, such as Open Overlay "
        "Router, accept it) or `lisp` (strict RFC 9300: I bit and instance-id, P bit and next "
        "protocol zero, written by a tc program on the uplink)", choices=("gpe", "lisp")))
    classic_decap: bool = field(default=True, metadata=_doc(
        "accept classic RFC 9300 data packets (any of the N, L, E, V, I bits) as well as LISP-GPE: "
        "an XDP program on the uplink rewrites their header for OVS's GPE port; the controller "
        "refuses to start when it cannot attach it. `false` accepts LISP-GPE only"))
    xdp_mode: str = field(default="auto", metadata=_doc(
        "how the classic decapsulation program runs: `native` (in the interface driver, before "
        "a socket buffer is built; the cheap mode, where the driver supports XDP), `generic` "
        "(on the socket buffer, any interface) or `auto` (native, else generic)",
        choices=("auto", "native", "generic")))
    uplink_interface: str | None = field(default=None, metadata=_doc(
        "the kernel network interface the classic-LISP programs attach to; default: "
        "uplink_port (an OVS `system` port carries the interface's name)",
        pattern=r"^[^\s/]{1,15}$"))


@dataclass(frozen=True)
class SiteGatewayConfig:
    """The gateway address the site's hosts route through; the switch answers for it."""

    ipv4: IPv4Address | None = field(default=None, metadata=_doc("gateway IPv4 address"))
    ipv6: IPv6Address | None = field(default=None, metadata=_doc("gateway IPv6 address"))
    mac: str = field(default="02:00:00:00:00:01", metadata=_doc(
        "gateway MAC address", pattern=r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$"))


@dataclass(frozen=True)
class TimersConfig:
    """Map-Request timing (RFC 9301 defaults)."""

    request_timeout: float = field(default=1.0, metadata=_doc(
        "seconds before the first retransmission; doubles each time", min=0.01, max=60))
    request_retries: int = field(default=3, metadata=_doc(
        "retransmissions before giving up (the timeout doubles each time: 1, 2, 4, 8 s); held "
        "packets are dropped then", min=0, max=10))
    request_min_interval: float = field(default=1.0, metadata=_doc(
        "at most one new Map-Request per EID in this many seconds (RFC 9301: 1 s)", min=0,
        max=60))
    request_holddown: float = field(default=30.0, metadata=_doc(
        "the longest hold-down: after giving up on an EID several times in a row, seconds before "
        "asking for it again (RFC 9301: 30 s after repeated unanswered retransmissions)", min=0,
        max=3600))
    request_holddown_first: float = field(default=1.0, metadata=_doc(
        "the first hold-down, after one give-up on an EID; it doubles with each give-up in a row "
        "up to request_holddown, and any valid answer covering the EID lifts it (0: none)",
        min=0, max=3600))
    request_rate: float = field(default=400.0, metadata=_doc(
        "Map-Requests (and data probes) sent per second at most, in all, retransmissions "
        "included; more wait their turn, one source host after another", min=1, max=1000000))
    request_rate_per_source: float = field(default=100.0, metadata=_doc(
        "... charged to one source host (the inner source address of the missed packet; "
        "refreshes count as the controller's own)", min=1, max=1000000))
    refresh_before: float = field(default=60.0, metadata=_doc(
        "seconds before a used entry expires that it is refreshed", min=0, max=3600))


@dataclass(frozen=True)
class ProbingConfig:
    """RLOC probing (RFC 9301 section 7.1): the ITR checks the locators it encapsulates to, and
    moves traffic off those that stop answering. The defaults are conservative (a dead locator is
    noticed within about interval + misses x timeout, 66 s); ``{interval: 1, timeout: 0.5}``
    notices it within 2.5 s, for sites that want fast failover."""

    enabled: bool = field(default=True, metadata=_doc(
        "probe the locators of the map-cache's mappings"))
    interval: float = field(default=60.0, metadata=_doc(
        "seconds between two probes of a locator (one probe per locator address, however "
        "many mappings use it)", min=0.1, max=3600))
    timeout: float = field(default=2.0, metadata=_doc(
        "seconds a probe waits for its answer; an unanswered probe is a miss and is repeated "
        "at once", min=0.05, max=60))
    misses: int = field(default=3, metadata=_doc(
        "misses in a row that mark a locator down (its mappings move to their other "
        "locators)", min=1, max=100))
    rate: float = field(default=100.0, metadata=_doc(
        "probes per second at most, in all", min=1, max=100000))


@dataclass(frozen=True)
class NativelyForwardConfig:
    """What the ITR does with traffic for EIDs whose negative mapping says natively-forward
    (space outside LISP, RFC 9300 section 6.1)."""

    mode: str = field(default="native", metadata=_doc(
        "`native`: out unencapsulated through the underlay (needs lisp_bridge.native_port and "
        "underlay.native_port; without them such traffic is dropped and the controller says "
        "so at start); `petr`: encapsulated to the proxy ETRs in petrs (RFC 6832); `drop`",
        choices=("native", "petr", "drop")))
    petrs: tuple[IPv4Address | IPv6Address, ...] = field(default=(), metadata=_doc(
        "(petr) proxy ETRs; they share the traffic equally, and RLOC probing watches them"))


@dataclass(frozen=True)
class BufferConfig:
    """Packets held while their Map-Request is outstanding, and the Map-Requests themselves:
    bounded per source host (the inner source address of the missed packet), so that one host's
    flood of misses leaves the others their share."""

    per_destination: int = field(default=16, metadata=_doc(
        "packets buffered per destination EID prefix", min=0, max=10000))
    per_source: int = field(default=64, metadata=_doc(
        "packets buffered per source host", min=0, max=1000000))
    total: int = field(default=1024, metadata=_doc(
        "packets buffered in all; when full, a packet from a host holding fewer takes the place "
        "of the oldest packet of the host holding the most", min=0, max=1000000))
    requests_per_source: int = field(default=64, metadata=_doc(
        "Map-Requests outstanding for one source host's misses; more misses from it are "
        "refused (counted) until some are answered or given up", min=1, max=1000000))
    requests_total: int = field(default=1024, metadata=_doc(
        "Map-Requests outstanding for misses in all; when full, a host with fewer takes the "
        "place of the oldest request of the host with the most", min=1, max=1000000))


@dataclass(frozen=True)
class PuntingConfig:
    """Fair punting: misses are metered per source host, per site port and in all (miss_rate).

    A cache miss reaches the controller through three OpenFlow meters, its source host's, its
    site port's and the site's, so that one host's flood of misses leaves the other hosts' first
    packets a share; control messages from the underlay pass their source's meter, then
    control_rate's (docs/troubleshooting.rst says how to tune them)."""

    miss_per_source: int = field(default=20, metadata=_doc(
        "misses per second one source host may punt; sources are hashed into source_buckets "
        "buckets with one meter each, and hosts that share a bucket share its rate", min=1,
        max=1000000))
    miss_per_port: int | None = field(default=None, metadata=_doc(
        "misses per second one site port may punt; default: miss_rate on a site with one site "
        "port, half of it with more", min=1, max=1000000))
    source_buckets: int = field(default=64, metadata=_doc(
        "the number of source buckets (a power of two, 16 to 256): the more buckets, the fewer "
        "hosts share a flooding host's", min=16, max=256))
    control_per_source: int | None = field(default=None, metadata=_doc(
        "LISP control messages (and data probes) per second one underlay source may punt; "
        "sources are hashed into source_buckets buckets as for misses; default: a quarter of "
        "control_rate. Raise it on a Map-Server/Map-Resolver with few, busy clients", min=1,
        max=1000000))


@dataclass(frozen=True)
class ApiConfig:
    """The inspection REST API (JSON over HTTP)."""

    host: str = field(default="127.0.0.1", metadata=_doc(
        "address to listen on (an IP address; keep it on loopback or a management network: "
        "docs/security.rst)"))
    port: int = field(default=8080, metadata=_doc("TCP port; 0 disables the API", min=0,
                                                  max=65535))
    allowed_hosts: tuple[str, ...] = field(default=(), metadata=_doc(
        "Host header values (names or addresses, no port) accepted for changes, besides "
        "host, 127.0.0.1, localhost and ::1"))
    token: str | None = field(repr=False, default=None, metadata=_doc(
        "when set, changes need it (Authorization: Bearer TOKEN; lispctl --token or "
        "LISP_API_TOKEN); quote it", secret=True))


@dataclass(frozen=True)
class ServerConfig:
    """The sockets of a Map-Server/Map-Resolver that runs without a switch (role ms-mr with no
    ``underlay:``): it serves LISP control messages on UDP itself."""

    addresses: tuple[IPv4Address | IPv6Address, ...] = field(
        default=(IPv4Address("0.0.0.0"), IPv6Address("::")), metadata=_doc(
            "addresses to listen on (0.0.0.0 and :: are every IPv4 and every IPv6 address)"))
    port: int = field(default=4342, metadata=_doc("UDP port (LISP control: 4342)", min=1,
                                                  max=65535))


@dataclass(frozen=True)
class PrefixListEntryConfig:
    """One entry of an import prefix list (first match wins; no match: deny)."""

    action: str = field(metadata=_doc("permit or deny", choices=("permit", "deny")))
    prefix: str = field(metadata=_doc("an IP prefix"))
    ge: int | None = field(default=None, metadata=_doc(
        "match routes at least this long inside the prefix", min=0, max=128))
    le: int | None = field(default=None, metadata=_doc(
        "match routes at most this long inside the prefix", min=0, max=128))


@dataclass(frozen=True)
class AltNeighborConfig:
    """A BGP neighbour on the ALT, reached through an OVS GRE port."""

    address: IPv4Address = field(metadata=_doc("the neighbour's inner (ALT) address"))
    remote_as: int = field(metadata=_doc("the neighbour's AS (4-byte, asplain)", min=1,
                                         max=2**32 - 1))
    gre_port: str = field(metadata=_doc(
        "the OVS GRE port towards it (type=gre, options:remote_ip=<its RLOC>, "
        "options:packet_type=legacy_l3)"))
    max_prefix: int = field(default=10000, metadata=_doc(
        "routes accepted from it; more and the session is shut down (0: no limit)", min=0,
        max=10**7))
    import_filter: tuple[PrefixListEntryConfig, ...] = field(default=(), metadata=_doc(
        "import prefix list; empty: the default route and the ALT's EID space only"))
    password: str | None = field(repr=False, default=None, metadata=_doc(
        "TCP MD5 password (os-ken supports it on the session it opens); quote it", secret=True))
    connect_mode: str = field(default="active", metadata=_doc(
        "active: we open the session and refuse the peer's own attempts (measured: when both "
        "sides open sessions, os-ken's collision handling can leave the session flapping); "
        "passive; both", choices=("active", "passive", "both")))


@dataclass(frozen=True)
class AltConfig:
    """LISP+ALT: the BGP speaker that joins the ALT over GRE."""

    local_as: int = field(metadata=_doc("our AS (4-byte, asplain, e.g. 2147483677)", min=1,
                                        max=2**32 - 1))
    router_id: IPv4Address = field(metadata=_doc("BGP router-id"))
    address: IPv4Address = field(metadata=_doc(
        "our ALT address, on the internal port (the BGP speaker binds to it)"))
    port: str = field(default="alt0", metadata=_doc(
        "the internal port on the LISP bridge holding the ALT address"))
    eid_space: tuple[str, ...] = field(default=(), metadata=_doc(
        "EID prefixes of the whole ALT (the default import filter accepts routes inside them)"))
    neighbors: tuple[AltNeighborConfig, ...] = field(default=(), metadata=_doc(
        "BGP neighbours"))


@dataclass(frozen=True)
class MapServerSiteConfig:
    """A site allowed to register with this Map-Server."""

    name: str = field(metadata=_doc("the site's name (in logs and the API)"))
    key: str = field(repr=False, metadata=_doc("the site's authentication key (quote it)",
                                               secret=True))
    eid_prefixes: tuple[EidPrefix, ...] = field(metadata=_doc(
        "prefixes the site may register (a registration must lie inside one)"))
    announce: tuple[EidPrefix, ...] = field(default=(), metadata=_doc(
        "aggregates to announce into the ALT instead of each registered prefix"))


@dataclass(frozen=True)
class MapServerConfig:
    """The Map-Server role (RFC 9301): sites register here; on the ALT their prefixes are
    announced into it."""

    sites: tuple[MapServerSiteConfig, ...] = field(metadata=_doc("registering sites"))


@dataclass(frozen=True)
class RegisterToConfig:
    """A Map-Server this ETR registers its EID prefixes with (every 60 s)."""

    address: IPv4Address | IPv6Address = field(metadata=_doc(
        "the Map-Server's address (IPv6 needs underlay.rloc_ipv6)"))
    key: str = field(repr=False, metadata=_doc("the authentication key (quote it)",
                                               secret=True))
    key_id: int = field(default=1, metadata=_doc(
        "1: HMAC-SHA-1, 2: HMAC-SHA-256", min=1, max=2))
    proxy_reply: bool = field(default=False, metadata=_doc(
        "ask the Map-Server to answer Map-Requests for us"))


@dataclass(frozen=True)
class OvsdbConfig:
    """The switch's database (OVSDB), where the controller sets how the bridges reconnect to it:
    after a controller restart OVS waits up to its ``max_backoff`` (8 s by default) before it
    tries again, so the controller shortens it when it starts (docs/deploying.rst)."""

    remote: str | None = field(default=None, metadata=_doc(
        "the OVSDB to set the bridges' controller records in, as ovs-vsctl --db takes it "
        "(unix:/var/run/openvswitch/db.sock for the system's OVS, tcp:HOST:PORT); unset: the "
        "controller leaves the records as they are"))
    max_backoff: int = field(default=1, metadata=_doc(
        "seconds at most between the bridges' attempts to reach a controller that went away "
        "(OVS's own default: 8)", min=1, max=3600))
    inactivity_probe: int = field(default=5, metadata=_doc(
        "seconds of silence on the OpenFlow connection before the bridge probes it (OVS: at "
        "least 5; 0 disables the probe)", min=0, max=3600))


@dataclass(frozen=True)
class Config:
    """A LISP site: one controller process."""

    role: str = field(metadata=_doc(
        "the site's role: itr (encapsulate, ask for mappings), etr (decapsulate, answer for the "
        "local EID prefixes), xtr (both) or ms-mr (no site of its own: only the Map-Server and "
        "Map-Resolver roles)", choices=ROLES))
    lisp_bridge: LispBridgeConfig | None = field(default=None, metadata=_doc(
        "the LISP bridge (needed by every role but an ms-mr without an ALT)"))
    underlay: UnderlayConfig | None = field(default=None, metadata=_doc(
        "the underlay bridge (needed by every role but an ms-mr without an ALT; an ms-mr without "
        "it serves UDP sockets itself, see server)"))
    instance_id: int = field(default=0, metadata=_doc(
        "the default instance-id (24 bits)", min=0, max=2**24 - 1))
    eid_prefixes: tuple[EidPrefixConfig, ...] = field(default=(), metadata=_doc(
        "local EID prefixes (needed by the etr and xtr roles)"))
    site_gateway: SiteGatewayConfig = field(default_factory=SiteGatewayConfig, metadata=_doc(
        "the site's gateway"))
    map_resolvers: tuple[IPv4Address | IPv6Address, ...] = field(default=(), metadata=_doc(
        "Map-Resolvers to send Map-Requests to, in an ECM (IPv6 addresses need "
        "underlay.rloc_ipv6)"))
    map_request_targets: tuple[IPv4Address | IPv6Address, ...] = field(
        default=(), metadata=_doc("ETR addresses to send plain Map-Requests to directly (no "
                                  "resolver; IPv6 addresses need underlay.rloc_ipv6)"))
    data_probes: bool = field(default=False, metadata=_doc(
        "send the first packets of a miss as data probes instead of buffering them"))
    miss_rate: int = field(default=100, metadata=_doc(
        "packets per second a cache miss may punt to the controller (OpenFlow meter)", min=1,
        max=1000000))
    control_rate: int = field(default=1000, metadata=_doc(
        "LISP control messages per second punted from the underlay (OpenFlow meter); raise it "
        "on a busy Map-Server/Map-Resolver", min=1, max=1000000))
    punting: PuntingConfig = field(default_factory=PuntingConfig, metadata=_doc(
        "fair sharing of miss_rate among source hosts and site ports, and of control_rate "
        "among underlay sources"))
    timers: TimersConfig = field(default_factory=TimersConfig, metadata=_doc("timers"))
    probing: ProbingConfig = field(default_factory=ProbingConfig, metadata=_doc(
        "(itr, xtr) RLOC probing and failover"))
    natively_forward: NativelyForwardConfig = field(
        default_factory=NativelyForwardConfig, metadata=_doc(
            "(itr, xtr) traffic for EIDs outside LISP (negative natively-forward mappings)"))
    buffer: BufferConfig = field(default_factory=BufferConfig, metadata=_doc("buffering"))
    api: ApiConfig = field(default_factory=ApiConfig, metadata=_doc("inspection API"))
    alt: AltConfig | None = field(default=None, metadata=_doc(
        "join LISP+ALT (BGP over GRE); Map-Requests and data probes then travel the ALT"))
    map_server: MapServerConfig | None = field(default=None, metadata=_doc(
        "act as a Map-Server"))
    map_resolver: bool = field(default=False, metadata=_doc(
        "act as a Map-Resolver: resolve ECM Map-Requests over the ALT, or without an ALT "
        "through the co-located Map-Server's registrations (needs alt: or map_server:)"))
    server: ServerConfig = field(default_factory=ServerConfig, metadata=_doc(
        "(ms-mr without underlay:) the UDP sockets it serves"))
    map_servers: tuple[RegisterToConfig, ...] = field(default=(), metadata=_doc(
        "(etr, xtr) Map-Servers to register the local EID prefixes with"))
    ovsdb: OvsdbConfig = field(default_factory=OvsdbConfig, metadata=_doc(
        "the switch's database: the controller sets how fast the bridges reconnect"))


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file."""
    source = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source, "", f"not UTF-8 text (byte {exc.start}: "
                          f"{exc.object[exc.start:exc.start + 1]!r})") from None
    return parse_config(text, source)


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain YAML keeps the last
    one, so a second ``role:`` would silently win)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} is given twice (first on line "
                        f"{seen[key] + 1})", key_node.start_mark)
                seen[key] = key_node.start_mark.line
            except TypeError:  # an unhashable key: the reader refuses it by name later
                pass
        return super().construct_mapping(node, deep)


def parse_config(text: str, source: str = "<config>") -> Config:
    """Validate config text (YAML)."""
    try:
        raw = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(source, "", f"not valid YAML: {where}{getattr(exc, 'problem', exc)}") \
            from None
    config = Reader(source).read(Config, raw if raw is not None else {}, "")
    config = _with_site_instance_id(config, raw)
    _check_site(config, source)
    if 0 < config.ovsdb.inactivity_probe < 5:
        raise ConfigError(source, "ovsdb.inactivity_probe", "OVS probes every 5 s at the most "
                          "often: give 0 (no probe) or at least 5")
    return config


def _with_site_instance_id(config: Config, raw) -> Config:
    """Local EID prefixes written without ``[iid]`` take the site's instance_id; one written
    with it (``[0]`` included) keeps its own."""
    if not config.instance_id or not config.eid_prefixes:
        return config
    texts = [entry["prefix"] for entry in raw["eid_prefixes"]]
    eids = tuple(
        eid if text.strip().startswith("[") else
        replace(eid, prefix=EidPrefix(config.instance_id, eid.prefix.network))
        for eid, text in zip(config.eid_prefixes, texts))
    return replace(config, eid_prefixes=eids)


def _check_site(config: Config, source: str) -> None:
    """Rules that span fields."""
    buckets = config.punting.source_buckets
    if buckets & (buckets - 1):
        raise ConfigError(source, "punting.source_buckets", f"{buckets} is not a power of two "
                          "(16, 32, 64, 128 or 256)")
    if config.role in ("etr", "xtr") and not config.eid_prefixes:
        raise ConfigError(source, "eid_prefixes", f"the {config.role} role needs at least one "
                          "local EID prefix")
    if config.map_resolver and config.alt is None and config.map_server is None:
        raise ConfigError(source, "map_resolver", "a Map-Resolver resolves over the ALT or "
                          "through a co-located Map-Server: add alt: or map_server:")
    if config.role == "ms-mr" and config.map_server is None and not config.map_resolver:
        raise ConfigError(source, "map_server", "the ms-mr role needs map_server:, "
                          "map_resolver: true or both")
    try:
        ip_address(config.api.host)
    except ValueError:
        raise ConfigError(source, "api.host", f"{config.api.host!r} is not an IP address") \
            from None
    switchless = switchless_server(config)
    for name in ("lisp_bridge", "underlay"):
        if getattr(config, name) is None and not switchless:
            raise ConfigError(source, name, "required key is missing" + (
                " (only an ms-mr without alt: runs without a switch)"
                if config.role == "ms-mr" else ""))
    if switchless:
        if config.lisp_bridge is not None:
            raise ConfigError(source, "lisp_bridge", "an ms-mr without underlay: runs without "
                              "a switch: drop lisp_bridge: too, or add underlay:")
        return
    if config.role in ("itr", "xtr") and not (config.map_resolvers or config.map_request_targets
                                              or config.alt is not None):
        raise ConfigError(source, "map_resolvers", f"the {config.role} role needs map_resolvers, "
                          "map_request_targets or alt to send Map-Requests to")
    if config.alt is not None:
        _check_alt(config.alt, source)
    if config.lisp_bridge.datapath_id == config.underlay.datapath_id:
        raise ConfigError(source, "underlay.datapath_id", "the LISP bridge and the underlay "
                          "bridge need datapath ids of their own (both are "
                          f"{config.underlay.datapath_id})")
    if (config.underlay.rloc_ipv6 is None) != (config.underlay.next_hop_ipv6 is None):
        raise ConfigError(source, "underlay.next_hop_ipv6", "rloc_ipv6 and next_hop_ipv6 go "
                          "together")
    if config.underlay.rloc_ipv6 is None:
        _check_ipv4_only(config, source)
    if (config.lisp_bridge.native_port is None) != (config.underlay.native_port is None):
        raise ConfigError(source, "underlay.native_port", "lisp_bridge.native_port and "
                          "underlay.native_port name the two ends of one patch port pair: "
                          "give both or neither")
    nf = config.natively_forward
    if nf.mode == "petr" and not nf.petrs:
        raise ConfigError(source, "natively_forward.petrs", "mode petr needs at least one "
                          "proxy ETR")
    for i, petr in enumerate(nf.petrs):
        if petr.version == 6 and config.underlay.rloc_ipv6 is None:
            raise ConfigError(source, f"natively_forward.petrs[{i}]", f"{petr} is an IPv6 "
                              "address: reaching it needs underlay.rloc_ipv6")
    names = [p.name for p in config.lisp_bridge.site_ports]
    if not names and config.role != "ms-mr":
        raise ConfigError(source, "lisp_bridge.site_ports", "at least one site port is needed")
    if len(names) * config.punting.source_buckets > 4096:
        raise ConfigError(source, "lisp_bridge.site_ports", f"{len(names)} site ports x "
                          f"{config.punting.source_buckets} source buckets: at most 4096 miss "
                          "meters (each port has its own buckets); lower punting.source_buckets")
    for i, name in enumerate(names):
        if name in names[:i] or name == config.lisp_bridge.gpe_port:
            raise ConfigError(source, f"lisp_bridge.site_ports[{i}].name",
                              f"port {name!r} is named twice")
    seen = {}
    for i, eid in enumerate(config.eid_prefixes):
        for j, other in seen.items():
            if eid.prefix.contains(other) or other.contains(eid.prefix):
                raise ConfigError(source, f"eid_prefixes[{i}].prefix",
                                  f"{eid.prefix} overlaps eid_prefixes[{j}] ({other})")
        seen[i] = eid.prefix


def _check_ipv4_only(config: Config, source: str) -> None:
    """Without an IPv6 RLOC, control messages can only be sent to IPv4 addresses."""
    places = [(f"map_resolvers[{i}]", a) for i, a in enumerate(config.map_resolvers)]
    places += [(f"map_request_targets[{i}]", a)
               for i, a in enumerate(config.map_request_targets)]
    places += [(f"map_servers[{i}].address", m.address) for i, m in enumerate(config.map_servers)]
    for where, address in places:
        if address.version == 6:
            raise ConfigError(source, where, f"{address} is an IPv6 address: reaching it needs "
                              "an IPv6 RLOC (underlay.rloc_ipv6 and underlay.next_hop_ipv6)")


def _check_alt(alt: AltConfig, source: str) -> None:
    for i, text in enumerate(alt.eid_space):
        try:
            ip_network(text)
        except ValueError as exc:
            raise ConfigError(source, f"alt.eid_space[{i}]", str(exc)) from None
    seen, ports = set(), {}
    for i, n in enumerate(alt.neighbors):
        if n.address in seen:
            raise ConfigError(source, f"alt.neighbors[{i}].address", f"{n.address} is listed twice")
        if n.address == alt.address:
            raise ConfigError(source, f"alt.neighbors[{i}].address", f"{n.address} is our own "
                              "ALT address (alt.address)")
        if n.gre_port in ports:
            raise ConfigError(source, f"alt.neighbors[{i}].gre_port", f"{n.gre_port!r} is "
                              f"alt.neighbors[{ports[n.gre_port]}]'s GRE port already: one GRE "
                              "port per neighbour")
        seen.add(n.address)
        ports[n.gre_port] = i
        for j, e in enumerate(n.import_filter):
            where = f"alt.neighbors[{i}].import_filter[{j}]"
            try:
                _check_prefix_list_entry(e)
            except ValueError as exc:
                raise ConfigError(source, where, str(exc)) from None


def _check_prefix_list_entry(e: PrefixListEntryConfig) -> None:
    """The entry's prefix parses and prefix length <= ge <= le <= the family's width (the ALT
    compiles the entries into prefix lists: lisp_app.alt.filters)."""
    net = ip_network(e.prefix)
    lo = e.ge if e.ge is not None else net.prefixlen
    hi = e.le if e.le is not None else (net.max_prefixlen if e.ge is not None else net.prefixlen)
    if not net.prefixlen <= lo <= hi <= net.max_prefixlen:
        raise ValueError(f"{net}: need {net.prefixlen} <= ge <= le <= {net.max_prefixlen}")


def switchless_server(config: Config) -> bool:
    """Whether this is a Map-Server/Map-Resolver that serves UDP sockets itself (no switch)."""
    return config.role == "ms-mr" and config.alt is None and config.underlay is None


def site_port_instance_ids(config: Config) -> dict[str, int]:
    """Site port name -> the instance-id its traffic belongs to."""
    return {p.name: config.instance_id if p.instance_id is None else p.instance_id
            for p in config.lisp_bridge.site_ports}


def local_rlocs(config: Config) -> tuple[IPv4Address | IPv6Address, ...]:
    """The underlay RLOC(s) and every locator of the local EID prefixes, each once."""
    found = [config.underlay.rloc]
    if config.underlay.rloc_ipv6 is not None:
        found.append(config.underlay.rloc_ipv6)
    found += [loc.rloc for eid in config.eid_prefixes for loc in eid.locators]
    return tuple(dict.fromkeys(found))


def local_prefixes(config: Config) -> list[tuple[EidPrefix, tuple[LocatorConfig, ...], int]]:
    """The local EID prefixes as (prefix, locators, ttl), the underlay RLOC where no locators
    are listed. (A prefix written without an instance-id already carries the site's:
    :func:`parse_config`.)"""
    return [(eid.prefix, eid.locators or (LocatorConfig(config.underlay.rloc),), eid.ttl)
            for eid in config.eid_prefixes]


def secret_fields(config) -> list[str]:
    """The key paths of the secrets a config holds (authentication keys, passwords, the API
    token: the fields whose metadata says ``secret``), e.g. ``['map_servers[0].key']``."""
    import dataclasses

    found: list[str] = []

    def walk(value, path: str) -> None:
        if dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                child = getattr(value, f.name)
                where = f"{path}.{f.name}" if path else f.name
                if f.metadata.get("secret"):
                    if child:
                        found.append(where)
                else:
                    walk(child, where)
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")

    walk(config, "")
    return found


def exposure_warning(path: str | Path, mode: int, secrets: list[str]) -> str | None:
    """What to tell the operator when a config holding secrets can be read or written by others
    than its owner (``mode``: the file's st_mode), else None. Like ssh with a private key."""
    if not secrets or not mode & 0o077:
        return None
    shown = ", ".join(secrets[:3]) + (f" and {len(secrets) - 3} more" if len(secrets) > 3 else "")
    return (f"{path} holds secrets ({shown}) and is accessible to other users "
            f"(mode {mode & 0o777:04o}): chmod 600 {path} (docs/security.rst)")
