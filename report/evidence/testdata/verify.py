#!/usr/bin/env python3
"""An auditor's verifier for relaylock evidence files.

Written from README.md, "Integrity and signing", and nothing else: Python 3
standard library only (Debian's python3). It recomputes every section hash,
the digest and the manifest, and compares them with the file's seal.
relaylock's CI runs it on every fixture and requires it to agree with
`relaylock verify` (report/evidence/pyverify_test.go).

Usage: verify.py FILE
Prints "digest <hex>" and one "MISMATCH <name>" line per section (or
integrity list) that does not match, and one per member that no hash
covers (outside every section, or added to the seal). Exit status 0 when
every hash matches and every member is covered, 1 otherwise; a file that is not strictly valid prints "MALFORMED <why>".
"""

import hashlib
import json
import sys
from decimal import Decimal


class Malformed(Exception):
    pass


class Num(str):
    """A JSON number, kept as written."""


def reject_constant(name):
    raise Malformed("not JSON: " + name)


def strict_object(pairs):
    seen = {}
    for k, _ in pairs:
        folded = k.lower()
        if folded in seen:
            raise Malformed("keys %r and %r in one object are equal ignoring case" % (seen[folded], k))
        seen[folded] = k
    return dict(pairs)


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
        return json.loads(text, object_pairs_hook=strict_object, parse_int=Num, parse_float=Num,
                          parse_constant=reject_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise Malformed(str(e))


def check_number(lit):
    if all(c not in lit for c in ".eE"):
        if abs(int(lit)) > 2 ** 53:
            raise Malformed("integer beyond 2^53: " + lit)
    elif float(lit) in (float("inf"), float("-inf")):
        raise Malformed("number out of range: " + lit)


# ---- RFC 8785 (algorithm jcs-sha256) ----

SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def jcs_string(s):
    out = []
    for c in s:
        if c in SHORT:
            out.append(SHORT[c])
        elif ord(c) < 0x20:
            out.append("\\u%04x" % ord(c))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def es_number(lit):
    """ECMAScript Number.prototype.toString of the double lit reads as."""
    check_number(lit)
    f = float(lit)
    if f == 0:
        return "0"
    sign = "-" if f < 0 else ""
    _, digits, exp = Decimal(repr(abs(f))).as_tuple()
    s = "".join(map(str, digits))
    n = len(s) + exp  # value = 0.s * 10^n
    s = s.rstrip("0")
    k = len(s)
    if k <= n <= 21:
        return sign + s + "0" * (n - k)
    if 0 < n <= 21:
        return sign + s[:n] + "." + s[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + s
    e = n - 1
    return sign + s[0] + ("." + s[1:] if k > 1 else "") + "e" + ("+" if e >= 0 else "-") + str(abs(e))


def jcs(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, Num):
        return es_number(v)
    if isinstance(v, str):
        return jcs_string(v)
    if isinstance(v, list):
        return "[" + ",".join(jcs(x) for x in v) + "]"
    names = sorted(v, key=lambda k: k.encode("utf-16-be"))
    return "{" + ",".join(jcs_string(k) + ":" + jcs(v[k]) for k in names) + "}"


# ---- the form of files sealed before RFC 8785 (algorithm sha256) ----

GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def legacy_string(s):
    return "".join(GO_ESCAPES.get(c, c) for c in jcs_string(s))


def prune(v):
    """The value with empty members dropped; None when v itself is empty."""
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            p = prune(x)
            if p is not None:
                out[k] = p
        return out or None
    if isinstance(v, list):
        return [prune(x) for x in v] or None
    if isinstance(v, Num):
        check_number(v)
        return None if float(v) == 0 else v
    if v is False or v == "":
        return None
    return v


def legacy(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if isinstance(v, Num):
        return str(v)
    if isinstance(v, str):
        return legacy_string(v)
    if isinstance(v, list):
        return "[" + ",".join(legacy(x) for x in v) + "]"
    return "{" + ",".join(legacy_string(k) + ":" + legacy(v[k]) for k in sorted(v)) + "}"


# ---- sections, digest, manifest ----

def sections(doc):
    def pick(*names):
        return {k: doc[k] for k in names if k in doc}
    out = [("header", pick("schema", "id", "created", "engagement", "tool"), True)]
    for key in ("audits", "inspections", "plans", "backups", "changes", "artifacts"):
        for i, x in enumerate(doc.get(key) or []):
            out.append(("%s[%d]" % (key, i), x, key != "artifacts"))
    out.append(("log", pick("updated", "log"), False))
    return out


def section_hash(value, algorithm):
    if algorithm == "jcs-sha256":
        text = jcs(value)
    else:
        text = legacy(prune(value))
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as e:  # an unpaired surrogate
        raise Malformed(str(e))
    return hashlib.sha256(data).hexdigest()


def list_hashes(pairs, is_content):
    d, m = hashlib.sha256(), hashlib.sha256()
    for name, h in pairs:
        line = ("%s %s\n" % (name, h)).encode("utf-8")
        if is_content(name):
            d.update(line)
        m.update(line)
    return d.hexdigest(), m.hexdigest()


def is_content(name):
    return name != "log" and not name.startswith("artifacts[")


COVERED_TOP = ("schema", "id", "created", "updated", "engagement", "tool", "audits", "inspections",
               "plans", "backups", "changes", "artifacts", "log", "integrity")
COVERED_SEAL = ("algorithm", "sections", "digest", "manifest")
COVERED_SECTION = ("name", "sha256")


def uncovered(doc):
    """Members no hash covers: outside every section, or in the seal."""
    out = ["%s" % k for k in doc if k not in COVERED_TOP]
    seal = doc.get("integrity")
    if isinstance(seal, dict):
        out += ["integrity.%s" % k for k in seal if k not in COVERED_SEAL]
        for i, s in enumerate(seal.get("sections") or []):
            if isinstance(s, dict):
                out += ["integrity.sections[%d].%s" % (i, k) for k in s if k not in COVERED_SECTION]
    return out


def verify(path):
    doc = load(path)
    if not isinstance(doc, dict):
        raise Malformed("not an object")
    extra = uncovered(doc)
    seal = doc.get("integrity")
    if not isinstance(seal, dict) or seal.get("algorithm") not in ("jcs-sha256", "sha256"):
        return None, ["integrity"] + extra
    algorithm = seal["algorithm"]
    computed = [(name, section_hash(v, algorithm)) for name, v, _ in sections(doc)]
    digest, _ = list_hashes(computed, is_content)
    recorded = [(s["name"], s["sha256"]) for s in seal.get("sections") or []]
    sealed = dict(recorded)
    bad = []
    for name, h in computed:
        if sealed.pop(name, None) != h:
            bad.append(name)
    bad.extend(sealed)  # sealed, but no longer in the file
    d, m = list_hashes(recorded, is_content)
    if d != seal.get("digest"):
        bad.append("integrity.digest")
    if m != seal.get("manifest"):
        bad.append("integrity.manifest")
    return digest, bad + extra


def main():
    if len(sys.argv) != 2:
        print(next(l for l in __doc__.splitlines() if l.startswith("Usage:")), file=sys.stderr)
        return 2
    try:
        digest, bad = verify(sys.argv[1])
    except Malformed as e:
        print("MALFORMED " + str(e))
        return 1
    if digest:
        print("digest " + digest)
    for name in bad:
        print("MISMATCH " + name)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
