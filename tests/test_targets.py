"""_targets and _egress: how every text names a URL, and which URLs the operator did not choose may be sent
to. No network (addresses are given as literals, which resolve without DNS)."""

from __future__ import annotations

import hashlib

import pytest

from airflow_ordo_hooks._egress import EgressPolicy
from airflow_ordo_hooks._targets import fingerprint, mask_text, mask_url
from airflow_ordo_hooks.exceptions import EgressRefused, TargetError


def check_untrusted_url(url, allowed_hosts=""):
    return EgressPolicy.parse(allowed_hosts).check_url(url)


def _fp(url):
    return hashlib.sha256(url.encode()).hexdigest()[:6]


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://u:p@discord.com/api/webhooks/1/tok?x=1", "https://discord.com/…"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/…"),
        ("https://[fe80::1]:8443/a/b", "https://[fe80::1]:8443/…"),
        ("ftp://user:pass@files.example/secret", "ftp://files.example/…"),
    ],
)
def test_mask_url_keeps_scheme_host_and_port_and_adds_a_fingerprint(url, masked):
    assert mask_url(url) == f"{masked}#{_fp(url)}"


def test_a_targets_fingerprint_is_its_sha256_and_its_mask_shows_the_first_six_digits():
    url = "https://hooks.slack.com/services/T000/B000/s3cr3t"
    assert fingerprint(url) == hashlib.sha256(url.encode()).hexdigest()[:16]
    assert mask_url(url).endswith("#" + fingerprint(url)[:6])
    assert fingerprint("conn:slack") != fingerprint("conn:slack2") and len(fingerprint("conn:slack")) == 16


def test_mask_url_of_a_malformed_url_says_so_without_quoting_it():
    assert mask_url("http://h:99999/secret").startswith("<malformed URL>#")


def test_mask_text_masks_every_url_and_every_quoted_part_of_the_known_ones():
    url = "https://hooks.example/services/T0/B0/SECRETPATH?token=SECRETQUERY"
    text = (
        "Max retries exceeded with url: /services/T0/B0/SECRETPATH?token=SECRETQUERY "
        "(Caused by redirect to ftp://user:pass@elsewhere/x), token=SECRETQUERY."
    )
    masked = mask_text(text, [url])
    assert "SECRET" not in masked and "user:pass" not in masked, masked
    assert f"with url: {mask_url(url)} " in masked
    assert f"(Caused by redirect to {mask_url('ftp://user:pass@elsewhere/x')})," in masked
    assert mask_text(masked, [url]) == masked  # masked URLs stay as they are


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1/x", "loopback"), ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"), ("http://10.1.2.3/", "private"), ("http://172.16.0.1/", "private"),
        ("http://192.168.1.1/", "private"), ("http://[fc00::1]/", "private"), ("http://169.254.169.254/latest/", "link-local"),
        ("http://[fe80::1]/", "link-local"), ("http://0.0.0.0/", "unspecified"), ("http://[::]/", "unspecified"),
        ("http://100.100.100.200/", "not a public address"),
    ],
)
def test_internal_addresses_are_refused_by_default(url, kind):
    with pytest.raises(EgressRefused) as raised:
        check_untrusted_url(url)
    assert kind in str(raised.value) and "allowed_hosts" in str(raised.value)
    assert str(raised.value).startswith(mask_url(url))


@pytest.mark.parametrize("url", ["ftp://8.8.8.8/x", "file:///etc/passwd", "gopher://8.8.8.8/"])
def test_only_http_urls_may_come_from_a_run_conf(url):
    with pytest.raises(EgressRefused, match="expected an http:// or https:// URL"):
        check_untrusted_url(url)


def test_public_addresses_pass_and_the_allowlist_takes_names_addresses_and_cidr_blocks():
    assert check_untrusted_url("https://8.8.8.8/hook") == "https://8.8.8.8/hook"
    assert check_untrusted_url("http://10.1.2.3/", "10.0.0.0/8")
    assert check_untrusted_url("http://127.0.0.1:9/", " 127.0.0.1 ")
    assert check_untrusted_url("http://[::1]/", "::1")
    assert check_untrusted_url("http://Hooks.Internal./x", "hooks.internal")  # by name, whatever it resolves to
    with pytest.raises(TargetError):
        check_untrusted_url("http://127.0.0.2/", "127.0.0.1/32")


def test_mask_text_masks_the_parts_of_a_url_as_the_connection_reads_them_too():
    url = "http://u%40x:pw@127.0.0.1:8080/a b/SECRETPATH?q=SECRETQUERY"  # urllib3 quotes the space, urlsplit does not
    text = "Max retries exceeded with url: /a%20b/SECRETPATH?q=SECRETQUERY"
    masked = mask_text(text, [url])
    assert "SECRET" not in masked and masked.endswith(mask_url(url)), masked
    assert mask_url(url).startswith("http://127.0.0.1:8080/…#")
