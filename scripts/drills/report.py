"""A drill's result: its figures, and every problem it found (none, when it passes)."""

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

MAX_PROBLEMS_SHOWN = 30
MAX_NOTES_SHOWN = 5


@dataclass
class DrillReport:
    title: str
    figures: list[tuple[str, object]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Worth knowing, not wrong: shown, never failing the drill.
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def figure(self, label: str) -> object:
        return dict(self.figures)[label]

    def text(self) -> str:
        width = max((len(label) for label, _ in self.figures), default=0)
        lines = [self.title, *(f"  {label:<{width}}  {_shown(value)}" for label, value in self.figures)]
        lines += [f"  note: {note}" for note in self.notes[:MAX_NOTES_SHOWN]]
        if len(self.notes) > MAX_NOTES_SHOWN:
            lines.append(f"  ... and {len(self.notes) - MAX_NOTES_SHOWN} more notes (all in --report-json)")
        for problem in self.problems[:MAX_PROBLEMS_SHOWN]:
            lines.append(f"  PROBLEM {problem}")
        if len(self.problems) > MAX_PROBLEMS_SHOWN:
            lines.append(f"  ... and {len(self.problems) - MAX_PROBLEMS_SHOWN} more problems")
        lines.append("PASS" if self.passed else f"FAIL: {len(self.problems)} problem(s)")
        return "\n".join(lines)

    def write_json(self, path: Path) -> None:
        path.write_text(
            json.dumps(
                {
                    "title": self.title,
                    "passed": self.passed,
                    "figures": dict(self.figures),
                    "problems": self.problems,
                    "notes": self.notes,
                },
                indent=2,
            )
        )

    def finish(self, workdir: Path, *, report_json: Path | None, keep: bool) -> int:
        """Print the report, write its JSON, keep the work directory if asked or failed; the exit code."""
        print(self.text())
        if report_json:
            self.write_json(report_json)
        if keep or not self.passed:
            print(f"Server log and scratch files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        return 0 if self.passed else 1


def _shown(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
