#!/usr/bin/python3
"""Holds the spf plugin's evaluator against the RFC 7208 test suite that Debian's python3-spf ships.

    rfc7208_suite.py SPF_TESTS_BINARY

Reads /usr/share/doc/python3-spf/rfc7208-tests.yml.gz, writes its scenarios as JSON (the zone of each with the
suite's conventions applied, below) and runs the "[rfc7208]" test of SPF_TESTS_BINARY on it, which evaluates
every case through Tern's check() against a table resolver and compares result and explanation.

The suite's conventions, as its own driver applies them: a name with SPF-type records and no TXT record gets
the same strings as TXT records (RFC 7208 dropped the SPF type, and only its "Selecting records" section tests
that SPF-type records are ignored); a record whose value is "NONE" stands for no record; "TIMEOUT" as a record
makes every query of the name time out unless a record of the asked type came before it, and as a value makes
the query of that type time out.
"""

import gzip
import json
import os
import subprocess
import sys
import tempfile

import yaml

SUITE = "/usr/share/doc/python3-spf/rfc7208-tests.yml.gz"


def records(entries):
    """One zone name's records as [type, value] pairs (or "TIMEOUT"), with the conventions applied."""
    out, generated, has_txt = [], [], False
    for entry in entries:
        if isinstance(entry, str):
            out.append(entry)
            continue
        for kind, value in entry.items():
            if kind in ("TXT", "SPF") and isinstance(value, str) and value not in ("NONE", "TIMEOUT"):
                value = [value]
            if kind == "TXT":
                has_txt = True
            elif kind == "SPF":
                generated.append(["TXT", value])
            if value != "NONE" and value != ["NONE"]:
                out.append([kind, value])
    if not has_txt:
        out += [item for item in generated if item[1] != ["NONE"]]
    return out


def main():
    binary = sys.argv[1]
    scenarios = []
    with gzip.open(SUITE, "rt", encoding="utf-8") as suite:
        for document in yaml.safe_load_all(suite):
            zone = {name.lower(): records(entries) for name, entries in (document.get("zonedata") or {}).items()}
            tests = []
            for name, case in document["tests"].items():
                results = case["result"] if isinstance(case["result"], list) else [case["result"]]
                tests.append({"name": name, "spec": str(case.get("spec", "")), "helo": case["helo"],
                              "host": case["host"], "mailfrom": case["mailfrom"], "results": results,
                              "explanation": case.get("explanation"), "receiver": case.get("receiver", "")})
            scenarios.append({"description": document.get("description", ""), "zone": zone, "tests": tests})
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "rfc7208.json")
        with open(path, "w", encoding="utf-8") as out:
            json.dump(scenarios, out)
        cases = sum(len(s["tests"]) for s in scenarios)
        print(f"{cases} cases in {len(scenarios)} scenarios from {SUITE}", flush=True)
        environment = dict(os.environ, TERN_SPF_SUITE=path)
        return subprocess.run([binary, "[rfc7208]"], env=environment).returncode


if __name__ == "__main__":
    sys.exit(main())
