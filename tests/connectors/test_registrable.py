"""The vectorised registrable domain agrees with tldextract's answer, host by host."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.prepare.emails import _extractor, registrable_domain, registrable_domains

SUFFIXES = sorted(s.removeprefix("*.").removeprefix("!") for s in _extractor().tlds)
LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
HOST = st.one_of(
    st.builds(lambda name, suffix: f"{name}.{suffix}", LABEL, st.sampled_from(SUFFIXES)),  # one label under any suffix
    st.builds(lambda sub, name, suffix: f"{sub}.{name}.{suffix}", LABEL, LABEL, st.sampled_from(SUFFIXES)),
    st.sampled_from(SUFFIXES),  # a suffix alone has no registrable part
    st.builds(lambda h, tail: h + tail, LABEL, st.sampled_from(["", ".", ":8080", " ", "/path"])),
    st.text(max_size=20),  # anything at all
)


def test_the_usual_hosts() -> None:
    hosts = pl.Series(["Acme.com.", "mail.acme.co.uk", "co.uk", "x.ck", "www.ck", " acme.io ", None, "localhost"])
    assert registrable_domains(hosts).to_list() == [
        "acme.com",
        "acme.co.uk",
        None,
        None,  # *.ck: every name under ck is itself a suffix
        "www.ck",  # except !www.ck
        "acme.io",
        None,
        None,
    ]


@settings(max_examples=400, deadline=None)
@given(st.lists(HOST, min_size=1, max_size=30))
def test_agrees_with_tldextract_on_any_host(hosts: list[str]) -> None:
    assert registrable_domains(pl.Series(hosts, dtype=pl.String)).to_list() == [registrable_domain(h) for h in hosts]
