#!/usr/bin/python3
"""The size limits of the code base: no source file in core/, sdk/, lib/ or plugins/ over 600 lines, and no
function over 80 lines (tests aside). A file or function over its limit is a sign that two concerns live in it.

Functions are found as clang-format lays them out: a line that ends with "{" opens a body when the statement it
ends has a parameter list and is no control statement, class, namespace or initializer; the body ends at the
first "}" at the same indentation. Lambdas count towards the function they are written in. Prints every file and
function over its limit and exits 1 when there is one.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ["core", "sdk", "lib", "plugins"]
MAX_FILE = 600
MAX_FUNCTION = 80
NOT_A_FUNCTION = re.compile(r"^\s*(if|else|for|while|switch|do|try|catch|namespace|class|struct|enum|union|extern|"
                            r"return|case|default)\b|=\s*\[|\]\s*\(|^\s*\[|=\s*\{$|\)\s*->\s*[\w:<>]+\s*\{$|"
                            r"\]\s*(mutable\s*)?\{$")


def sources():
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".cpp", ".hpp") and "tests" not in path.relative_to(ROOT).parts:
                yield path


def statement_before(lines, index):
    """The text of the statement that line `index` ends: back to the previous line ending in ; { } or a label."""
    start = index
    while start > 0 and not re.search(r"[;{}]\s*$|^\s*(public|private|protected):\s*$|^\s*$|^\s*//",
                                      lines[start - 1]):
        start -= 1
    return start, " ".join(line.strip() for line in lines[start:index + 1])


def long_functions(path):
    lines = path.read_text().splitlines()
    found = []
    for index, line in enumerate(lines):
        if not line.endswith("{") or line.lstrip().startswith("//"):
            continue
        indent = len(line) - len(line.lstrip())
        if indent > 4:
            continue
        start, statement = statement_before(lines, index)
        if "(" not in statement or NOT_A_FUNCTION.search(statement):
            continue
        closing = " " * indent + "}"
        for end in range(index + 1, len(lines)):
            if lines[end] == closing or lines[end].startswith(closing + " ") or lines[end] == closing + ";":
                length = end - start + 1
                if length > MAX_FUNCTION:
                    name = re.search(r"([\w:~]+)\s*\(", statement)
                    found.append((start + 1, length, name.group(1) if name else statement[:60]))
                break
    return found


def main():
    problems = []
    for path in sources():
        relative = path.relative_to(ROOT)
        count = len(path.read_text().splitlines())
        if count > MAX_FILE:
            problems.append(f"{relative}: {count} lines, more than {MAX_FILE}")
        for line, length, name in long_functions(path):
            problems.append(f"{relative}:{line}: {name} has {length} lines, more than {MAX_FUNCTION}")
    for problem in problems:
        print(problem)
    print(f"{len(problems)} over the limits" if problems else "every file and function within the limits")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
