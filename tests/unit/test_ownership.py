"""One owner per server job: the pure decision (ownership.py), the claims in the store, and the
reconciler step in process (controller + emulator on a thread + fake Kubernetes)."""

from __future__ import annotations


import pytest

from rollup_operator.job import ownership as own
from rollup_operator.job.decide import ADD_FINALIZER, PROGRESSING, REMOVE_FINALIZER, STALLED
from rollup_operator.job.spec import FINALIZER, job_spec_from_body
from rollup_operator.job.observations import UNAUTHORIZED, UNAVAILABLE, Failure, JobAbsent, JobObserved
from rollup_operator.job.ownership import Claim, Ownership, cluster_identities, normalise_url, ownership
from rollup_operator.job.store import Store


A = frozenset({"urls:http://es:9200"})
B = frozenset({"urls:http://other:9200"})
U = frozenset({"urls:http://node1:9200", "uuid:u1"})
U2 = frozenset({"urls:http://node2:9200", "uuid:u1"})


# --- cluster identity ----------------------------------------------------------------------------


@pytest.mark.parametrize("url, want", [
    ("http://ES:9200", "http://es:9200"),
    ("HTTP://es:9200/", "http://es:9200"),
    ("https://es.example", "https://es.example:443"),
    ("http://es.example/", "http://es.example:80"),
    ("https://es.example:443/prefix/", "https://es.example:443/prefix"),
    ("http://[::1]:9200", "http://[::1]:9200"),
])
def test_urls_are_normalised(url, want):
    assert normalise_url(url) == want


def test_identity_is_the_sorted_url_set_plus_the_uuid_when_known():
    assert cluster_identities(["http://b:9200/", "HTTP://A:9200"], None) == {"urls:http://a:9200,http://b:9200"}
    assert cluster_identities(["http://a:9200", "http://b:9200"], None) == cluster_identities(["http://b:9200", "http://a:9200/"], None)
    assert cluster_identities(["http://a:9200"], "abc") == {"urls:http://a:9200", "uuid:abc"}
    assert cluster_identities(["http://a:9200"], "_na_") == {"urls:http://a:9200"}  # cluster not formed yet


# --- the decision -------------------------------------------------------------------------------


def c(name, created, clusters, ns="ns"):
    return Claim((ns, name), created, clusters)


def test_alone_owns():
    me = c("a", 10, A)
    assert ownership(me, [me]) == Ownership()


def test_oldest_claim_owns_and_the_younger_is_a_duplicate():
    old, young = c("z-old", 10, A), c("a-young", 20, A)
    assert ownership(old, [old, young]) == Ownership()
    assert ownership(young, [old, young]) == Ownership(("ns", "z-old"))


def test_same_second_is_decided_by_namespace_then_name():
    x, y, z = c("b", 10, A, ns="ns1"), c("a", 10, A, ns="ns2"), c("a", 10, A, ns="ns1")
    assert ownership(z, [x, y, z]) == Ownership()
    assert ownership(x, [x, y, z]) == Ownership(("ns1", "a"))
    assert ownership(y, [x, y, z]) == Ownership(("ns1", "a"))


def test_other_clusters_do_not_compete():
    old, young = c("old", 10, B), c("young", 20, A)
    assert ownership(young, [old, young]) == Ownership()


def test_two_urls_of_one_cluster_compete_through_the_uuid():
    old, young = c("old", 10, U), c("young", 20, U2)
    assert ownership(young, [old, young]) == Ownership(("ns", "old"))
    # before the UUID of one of them is known, they look like two clusters
    assert ownership(young, [c("old", 10, frozenset({"urls:http://node1:9200"})), young]) == Ownership()


def test_an_older_claim_whose_cluster_is_unknown_makes_the_younger_wait():
    old, young = c("old", 10, frozenset()), c("young", 20, A)
    assert ownership(young, [old, young]) == Ownership(("ns", "old"), certain=False)
    # a younger unknown claim does not hold the older back; an unknown self that is oldest owns
    assert ownership(old, [old, young]) == Ownership()
    # a known older owner wins over an unknown one in between
    mid = c("mid", 15, frozenset())
    assert ownership(young, [c("first", 5, A), mid, young]) == Ownership(("ns", "first"))


def test_an_unknown_self_with_an_older_claim_waits():
    me = c("me", 20, frozenset())
    assert ownership(me, [c("old", 10, B), me]) == Ownership(("ns", "old"), certain=False)


def spec(desired="started", **meta):
    body = {"metadata": {"namespace": "ns", "name": "dup", "generation": 1, **meta},
            "spec": {"connectionRef": {"name": "es"}, "desiredState": desired, "jobId": "j", **meta.pop("_spec", {})}}
    return job_spec_from_body(body)


def test_a_duplicate_is_stalled_naming_the_owner_and_never_calls():
    for obs in (JobObserved("stopped"), JobObserved("started"), JobAbsent()):
        for desired in ("started", "stopped"):
            d = own.duplicate(spec(desired), obs, ("other", "owner"))
            assert d.action is None and d.requeue_after is None
            assert d.verdict.phase == STALLED and d.verdict.reason == "DuplicateJob"
            assert "RollupJob other/owner" in d.verdict.message


def test_a_duplicate_whose_connection_cannot_be_used_says_so_first_and_names_the_owner():
    d = own.duplicate(spec(), Failure(UNAUTHORIZED, "Elasticsearch rejected the credentials (401)"), ("other", "owner"))
    assert d.action is None and d.verdict.phase == STALLED and d.verdict.reason == UNAUTHORIZED
    assert "RollupJob other/owner owns rollup job [j]" in d.verdict.message
    # an outage does not hide the duplicate (no flapping reason while the server comes and goes)
    d = own.duplicate(spec(), Failure(UNAVAILABLE, "cannot reach Elasticsearch"), ("other", "owner"))
    assert d.action is None and d.verdict.reason == "DuplicateJob"


def test_a_duplicate_keeps_its_finalizer_bookkeeping_and_releases_it_without_a_call_when_deleted():
    s = job_spec_from_body({"metadata": {"namespace": "ns", "name": "dup", "generation": 1},
                            "spec": {"connectionRef": {"name": "es"}, "desiredState": "stopped", "deletionPolicy": "Delete"}})
    assert own.duplicate(s, JobObserved("started"), ("ns", "o")).action == ADD_FINALIZER
    deleting = job_spec_from_body({"metadata": {"namespace": "ns", "name": "dup", "generation": 1, "finalizers": [FINALIZER],
                                                "deletionTimestamp": "2026-12-01T00:00:00Z"},
                                   "spec": {"connectionRef": {"name": "es"}, "desiredState": "stopped", "deletionPolicy": "Delete"}})
    d = own.duplicate(deleting, JobObserved("started"), ("ns", "o"))
    assert d.action == REMOVE_FINALIZER and d.verdict.phase == PROGRESSING and "without touching the server" in d.verdict.message
    retain_with_fin = job_spec_from_body({"metadata": {"namespace": "ns", "name": "dup", "generation": 1, "finalizers": [FINALIZER]},
                                          "spec": {"connectionRef": {"name": "es"}, "desiredState": "stopped"}})
    assert own.duplicate(retain_with_fin, JobAbsent(), ("ns", "o")).action == REMOVE_FINALIZER


# --- the claims in the store --------------------------------------------------------------------


def job_body(name, ns="ns", created="2026-12-01T10:00:00Z", conn="es", job_id="j", rv=1, desired="started"):
    return {"metadata": {"namespace": ns, "name": name, "generation": 1, "resourceVersion": str(rv), "creationTimestamp": created},
            "spec": {"connectionRef": {"name": conn}, "desiredState": desired, "jobId": job_id}}


def connect(store, ns, name, clusters):
    store.put_connection({"metadata": {"namespace": ns, "name": name, "generation": 1, "resourceVersion": "1"},
                          "spec": {"url": "http://es:9200"}})
    store.set_clusters((ns, name), clusters)


def test_store_indexes_claims_by_job_id_and_cluster():
    st = Store()
    a = st.put_job(job_body("young", created="2026-12-01T10:00:05Z"), 0.0)
    b = st.put_job(job_body("old", ns="other", created="2026-12-01T10:00:00Z"), 0.0)
    assert a and b
    assert st.ownership(a) == Ownership() and st.claims_changed() == []  # no connection yet: no claim
    connect(st, "ns", "es", A)
    assert st.ownership(a) == Ownership()
    connect(st, "other", "es", frozenset())  # known to exist, cluster not asked yet
    assert st.ownership(a) == Ownership(("other", "old"), certain=False)
    st.set_clusters(("other", "es"), A)
    assert st.ownership(a) == Ownership(("other", "old")) and st.ownership(b) == Ownership()
    assert {e.key for e in st.claims_changed()} == {("ns", "young"), ("other", "old")}
    assert st.claims_changed() == []  # drained
    st.put_job(job_body("young", created="2026-12-01T10:00:05Z", rv=2, desired="stopped"), 0.0)
    assert st.claims_changed() == []  # a new spec, same claim: nobody else's owner changed
    st.set_clusters(("other", "es"), B)  # the old one's connection now points elsewhere
    assert st.ownership(a) == Ownership()
    st.set_clusters(("other", "es"), A)
    st.delete_job(("other", "old"))
    assert st.ownership(a) == Ownership()
    assert [e.key for e in st.claims_changed()] == [("ns", "young")]


def test_store_drops_claims_of_unusable_specs_and_deleted_connections():
    st = Store()
    connect(st, "ns", "es", A)
    old = st.put_job(job_body("old", created="2026-12-01T10:00:00Z"), 0.0)
    young = st.put_job(job_body("young", created="2026-12-01T10:00:09Z"), 0.0)
    assert old and young and st.ownership(young).owner == ("ns", "old")
    bad = job_body("old", created="2026-12-01T10:00:00Z", rv=5)
    bad["spec"]["desiredState"] = "sideways"
    bad["metadata"]["generation"] = 2
    st.put_job(bad, 0.0)
    assert st.ownership(young) == Ownership()  # an invalid spec claims nothing
    fixed = job_body("old", created="2026-12-01T10:00:00Z", rv=6)
    fixed["metadata"]["generation"] = 3
    st.put_job(fixed, 0.0)
    assert st.ownership(young) == Ownership(("ns", "old"))  # fixed: it claims again, and is older
    st.set_clusters(("ns", "es"), None)  # the connection is gone / unusable
    assert st.claimants("j") == []


def test_owner_of_a_job_for_an_actor_that_is_not_a_rollupjob():
    """Store.owner_of (a RollupMigration acting on the server job itself): the oldest RollupJob naming
    the job on that cluster, any namespace; none on another cluster; not certain while a cluster is unknown."""
    st = Store()
    assert st.owner_of("j", A) == Ownership()  # nobody names it
    connect(st, "o", "es", A)
    st.put_job(job_body("theirs", ns="o", created="2026-12-01T10:00:09Z"), 0.0)
    connect(st, "t", "es", B)
    st.put_job(job_body("mine", ns="t", created="2026-12-01T10:00:00Z"), 0.0)  # older, but on another cluster
    assert st.owner_of("j", A) == Ownership(("o", "theirs"))
    assert st.owner_of("j", B) == Ownership(("t", "mine"))
    assert st.owner_of("other-id", A) == Ownership()
    assert st.owner_of("j", frozenset()).certain is False  # the actor's own cluster is not known yet


def test_store_names_the_claimants_whose_owner_changed_and_only_those_a_pass_acted_for():
    st = Store()
    connect(st, "ns", "es", A)
    young = st.put_job(job_body("young", created="2026-12-01T10:00:05Z"), 0.0)
    assert young and st.owners_changed() == []  # no pass yet: nothing to wake
    young.ownership = st.ownership(young)  # what its pass acted on: it owns the job
    old = st.put_job(job_body("old", created="2026-12-01T10:00:00Z"), 0.0)
    assert old and st.owners_changed() == [("ns", "young")]  # an older claim appeared: the owner changed
    assert st.owners_changed() == []  # drained
    young.ownership = st.ownership(young)
    st.put_job(job_body("young", created="2026-12-01T10:00:05Z", rv=2, desired="stopped"), 0.0)
    assert st.owners_changed() == []  # a new spec, same claim
    st.delete_job(("ns", "old"))
    assert st.owners_changed() == [("ns", "young")]
