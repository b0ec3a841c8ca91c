#!/usr/bin/python3
"""The house rules the code base keeps, checked on the source tree:

- no plugin reaches into another plugin's folder (a CMake path or an #include of another plugin's header): what two
  plugins share lives in lib/ or sdk/;
- the core knows no scripting language: core/ neither includes Lua's headers nor links LuaJIT, and the SDK names no
  Lua-specific thing;
- no file cites a design document that is not in the repository (DESIGN.md, PEERS.md, STYLE.md).

Prints each breach and exits 1 when there is one.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = (".cpp", ".hpp", ".txt", ".cmake", ".md", ".py", ".lua", ".toml", ".in")


def files(folder, suffixes=SOURCE):
    return [path for path in sorted((ROOT / folder).rglob("*")) if path.is_file() and
            (path.suffix in suffixes or path.name == "CMakeLists.txt")]


def main():
    problems = []
    plugins = sorted(path.name for path in (ROOT / "plugins").iterdir() if path.is_dir())
    for plugin in plugins:
        others = [other for other in plugins if other != plugin]
        headers = {other: {path.name for path in (ROOT / "plugins" / other).glob("*.hpp")} for other in others}
        own = {path.name for path in (ROOT / "plugins" / plugin).rglob("*.hpp")}
        for path in files(f"plugins/{plugin}", (".cpp", ".hpp", ".txt")):
            text = path.read_text()
            for other in others:
                if re.search(rf"plugins/{re.escape(other)}\b|\.\./{re.escape(other)}\b", text):
                    problems.append(f"{path.relative_to(ROOT)}: reaches into plugins/{other}")
            for included in re.findall(r'#include "([^"/]+)"', text):
                for other, names in headers.items():
                    if included in names and included not in own:
                        problems.append(f"{path.relative_to(ROOT)}: includes {included} of plugins/{other}")
    for path in files("core", (".cpp", ".hpp", ".txt")):
        text = path.read_text()
        if re.search(r"#include <(lua|lauxlib|lualib|luajit)\.h>|LUAJIT", text):
            problems.append(f"{path.relative_to(ROOT)}: the core uses Lua")
    for path in files("sdk"):
        if re.search(r"\blua\b", path.read_text(), re.IGNORECASE):
            problems.append(f"{path.relative_to(ROOT)}: the SDK names Lua")
    for folder in ("core", "sdk", "lib", "plugins", "docs", "tests", "tools", "examples", "scripts", "config"):
        for path in files(folder):
            if path == Path(__file__).resolve():
                continue
            if re.search(r"\b(DESIGN|PEERS|STYLE)\.md\b", path.read_text(errors="replace")):
                problems.append(f"{path.relative_to(ROOT)}: cites a document that is not in the repository")
    for problem in problems:
        print(problem)
    print(f"{len(problems)} breaches of the house rules" if problems else "the house rules hold")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
