"""The vendored front-end files: present at the versions package.json names, without the GOV.UK brand."""

import json
from pathlib import Path

from timebank.web import paths

ROOT = Path(__file__).parents[2]
STATIC = ROOT / "timebank" / "static"


def test_every_asset_the_pages_name_is_shipped() -> None:
    for name, url in paths._ASSETS.items():
        assert (STATIC / url.removeprefix("/static/")).is_file(), name


def test_the_vendored_versions_are_the_ones_in_package_json() -> None:
    wanted = json.loads((ROOT / "package.json").read_text())["dependencies"]
    for package, version in wanted.items():
        folder = STATIC / "vendor" / f"{package}-{version}"
        assert folder.is_dir(), folder
        assert any(p.name.upper().startswith(("LICENSE", "LICENCE")) for p in folder.iterdir()), (
            f"no licence in {folder}"
        )
    assert paths.GOVUK_FRONTEND.endswith(wanted["govuk-frontend"])


def test_no_gds_transport_font_and_no_crown_are_shipped() -> None:
    govuk = (
        STATIC
        / "vendor"
        / f"govuk-frontend-{json.loads((ROOT / 'package.json').read_text())['dependencies']['govuk-frontend']}"
    )
    assert not [p for p in govuk.rglob("*") if p.suffix in {".woff", ".woff2", ".svg", ".png"}]
    css = (govuk / "govuk-frontend.min.css").read_text()
    assert "@font-face" not in css and "GDS Transport" not in css
