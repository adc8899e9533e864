#!/usr/bin/env python3
"""Copies the browser side of the preview into the package's static directory.

    python3 host/netbox-plugin/build_static.py

The files come from this repository (host/preview/ and the planner's web build in pkg/web/,
which ./scripts/setup.sh makes); nothing is fetched. `pip install host/netbox-plugin` runs
this too (setup.py), so a wheel or an installed package always carries the current files.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
STATIC = HERE / "proxbox_planner_netbox" / "static" / "proxbox_planner_netbox"

PREVIEW = REPO / "host" / "preview"
# host/preview/ files that belong to the standalone page or its Node server, not to NetBox.
STANDALONE_ONLY = {"serve.js", "main.js", "index.html", "README.md"}
PLANNER = {"pkg/proxbox_planner.js": "pkg/web/proxbox_planner.js",
           "pkg/proxbox_planner_bg.wasm": "pkg/web/proxbox_planner_bg.wasm"}


def assets() -> dict[str, Path]:
    """static name -> source file in the repository."""
    component = {
        path.name: path
        for path in sorted(PREVIEW.glob("*"))
        if path.suffix in {".js", ".css"} and path.name not in STANDALONE_ONLY
    }
    return {**component, **{name: REPO / source for name, source in PLANNER.items()}}


def missing_sources() -> list[str]:
    return [str(source.relative_to(REPO)) for source in assets().values() if not source.is_file()]


def copy_assets() -> list[Path]:
    missing = missing_sources()
    if missing:
        raise SystemExit(
            f"missing {', '.join(missing)} (run ./scripts/setup.sh at the repository root first)"
        )
    copied = []
    if STATIC.exists():
        shutil.rmtree(STATIC)  # no file of an earlier build outlives its source
    for name, source in assets().items():
        target = STATIC / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        copied.append(target)
    return copied


def assets_present() -> bool:
    return all((STATIC / name).is_file() for name in ("preview.js", "netbox.js", *PLANNER))


if __name__ == "__main__":
    for path in copy_assets():
        print(path.relative_to(REPO), file=sys.stderr)
