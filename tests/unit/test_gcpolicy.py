"""The garbage-collection policy: the survivors of every full collection are frozen, so that the
next full collection looks only at what came since; removing it gives them back."""

from __future__ import annotations

import gc
import weakref

from lisp_app.shell.gcpolicy import GcPolicy


class FakeGc:
    def __init__(self):
        self.callbacks: list = []
        self.frozen = 0
        self.collections = 0
        self.thawed = 0

    def collect(self, generation: int = 2):
        self.collections += 1
        for callback in list(self.callbacks):
            callback("start", {"generation": generation})
        for callback in list(self.callbacks):
            callback("stop", {"generation": generation, "collected": 0, "uncollectable": 0})

    def freeze(self):
        self.frozen += 1

    def unfreeze(self):
        self.thawed += 1

    def get_freeze_count(self):
        return self.frozen


def test_only_the_end_of_a_full_collection_freezes():
    fake = FakeGc()
    policy = GcPolicy(fake)
    policy.install()
    assert fake.collections == 1 and fake.frozen == 1  # what the process holds at start
    fake.collect(0)
    fake.collect(1)
    assert fake.frozen == 1
    fake.collect(2)
    assert fake.frozen == 2 == policy.freezes
    policy.install()  # twice: still one callback
    assert len(fake.callbacks) == 1
    policy.remove()
    assert fake.callbacks == [] and fake.thawed == 1 and not policy.installed
    fake.collect(2)
    assert fake.frozen == 2
    policy.remove()  # twice: nothing more
    assert fake.thawed == 1


class Node:
    def __init__(self):
        self.other = None


def test_with_the_real_collector_survivors_are_frozen_and_given_back():
    assert gc.get_freeze_count() == 0
    policy = GcPolicy()
    kept = [Node() for _ in range(1000)]
    try:
        policy.install()
        frozen = gc.get_freeze_count()
        assert frozen >= 1000 and policy.frozen() == frozen
        # a frozen object is still freed by reference counting when nothing refers to it
        probe = weakref.ref(kept[0])
        del kept[0]
        assert probe() is None
        # new survivors are frozen by the next full collection; new cyclic garbage is collected
        more = [Node() for _ in range(500)]
        a, b = Node(), Node()
        a.other, b.other = b, a
        cycle = weakref.ref(a)
        del a, b
        gc.collect()
        assert cycle() is None
        assert gc.get_freeze_count() >= frozen + 500
        assert more
    finally:
        policy.remove()
    assert gc.get_freeze_count() == 0 and gc.callbacks.count(policy._after_collection) == 0
