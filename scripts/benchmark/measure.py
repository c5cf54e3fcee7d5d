"""Measuring tools shared by the benchmark phases: wrk, child processes' CPU, a process tree's RSS."""

import json
import os
import re
import subprocess
import threading
from pathlib import Path

HERE = Path(__file__).parent
# The PostgreSQL server the benchmarks create their databases on (no database name).
POSTGRES_SERVER = os.environ.get("TIMEBANK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")


class ProcessSampler:
    """Samples the RSS of a process tree, and its CPU time, while a benchmark runs."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.max_rss_mb: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def pids(self) -> list[int]:
        found = [self.root_pid]
        for pid in found:
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            found.extend(int(child) for child in children)
        return found

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            for pid in self.pids():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                match = re.search(r"VmRSS:\s+(\d+) kB", status)
                if match:
                    self.max_rss_mb[pid] = max(self.max_rss_mb.get(pid, 0.0), int(match.group(1)) / 1024)

    def peak_rss_mb(self) -> float:
        """The largest RSS any one process of the tree reached while sampled."""
        return max(self.max_rss_mb.values(), default=0.0)

    def __enter__(self) -> "ProcessSampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL backend process on this machine."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text:
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run_measured(command: list[str], env: dict[str, str], marker: str) -> tuple[dict, float]:
    """Run a load generator; return its JSON summary and the CPU seconds it used."""
    process = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = process.communicate()
    _, _, usage = os.wait4(process.pid, 0) if process.returncode is None else (0, 0, None)
    text = output.decode(errors="replace")
    line = next((line for line in text.splitlines() if line.startswith(marker)), None)
    if line is None:
        raise RuntimeError(f"{command[0]} printed no {marker} line:\n{text[-3000:]}")
    cpu = (usage.ru_utime + usage.ru_stime) if usage else 0.0
    return json.loads(line[len(marker) :]), cpu


def children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def wrk(script: str, url: str, connections: int, seconds: float, env: dict[str, str]) -> tuple[dict, float]:
    before = children_cpu()
    result, _ = run_measured(
        [
            "wrk",
            "-t",
            str(min(2, connections)),
            "-c",
            str(connections),
            "-d",
            f"{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(HERE / script),
            url,
        ],
        env,
        "WRK_JSON ",
    )
    return result, children_cpu() - before
