"""`tledge edge` and `tledge doctor` on Raspberry Pi OS 12 and 13 userlands under QEMU.

Each release's own arm64 Python runs this checkout's tledge with the `[edge]` extra that
pip picks for it, on the CPU of a Pi 4 and of a Pi 5; its answers must match this
machine's. What this does not prove (cameras, speed, the Pi's kernel): docs/raspberry-pi.md.
Checked that it can fail: with the BGR-to-RGB swap removed from the emulated copy of the
client only, the Coral model calls the hot dog a paper towel and the test fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import EdgeCase, top_k_by_photo
from .userland import PI_CPUS, PI_OS_RELEASES, PiOs, site_dir

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# Both boards on both releases: the CPU picks the runtime's kernels, the release its
# Python, glibc and wheels.
SYSTEMS = [
    pytest.param(pi_os, cpu, id=f"pios{pi_os.release}-{cpu}")
    for pi_os in PI_OS_RELEASES
    for cpu in PI_CPUS.values()
]
# int8 scores are multiples of 1/256; kernels of other CPUs may round a step or two apart.
SCORE_TOLERANCE = 4 / 256


def compare_with_host(host: dict, emulated_jsonl: str) -> float:
    """Assert the same top-1 on every photo as `host`'s answers; return the largest score
    difference of a label both top-5 lists hold."""
    emulated = top_k_by_photo(emulated_jsonl)
    assert sorted(emulated) == sorted(host) and len(host) >= 4
    # A model that calls every photo the same would make the comparison trivial.
    assert len({top[0][0] for top in host.values()}) >= 3
    largest = 0.0
    for photo, host_top in host.items():
        assert emulated[photo][0][0] == host_top[0][0], photo
        host_scores = dict(host_top)
        for label, score in emulated[photo]:
            if label in host_scores:
                largest = max(largest, abs(score - host_scores[label]))
    return largest


@pytest.mark.parametrize(("pi_os", "cpu"), SYSTEMS)
@pytest.mark.parametrize("case_name", ["food_case", "coral_case"])
def test_edge_matches_x86(
    request: pytest.FixtureRequest, run_tledge, host_answers, case_name: str, pi_os, cpu
):
    case: EdgeCase = request.getfixturevalue(case_name)
    jsonl = run_tledge(pi_os, cpu, case.arguments())
    largest = compare_with_host(host_answers(case), jsonl)
    print(f"Pi OS {pi_os.release} {cpu} {case.model.name}: same top-1, max |score diff| {largest}")
    assert largest <= SCORE_TOLERANCE


# Doctor once per release, each on one of the boards.
@pytest.mark.parametrize(
    ("pi_os", "cpu"),
    [
        pytest.param(pi_os, cpu, id=f"pios{pi_os.release}-{cpu}")
        for pi_os, cpu in zip(PI_OS_RELEASES, PI_CPUS.values(), strict=True)
    ],
)
def test_doctor_finds_litert_and_no_tensorflow(pi_cache: Path, run_tledge, pi_os: PiOs, cpu):
    assert not list(site_dir(pi_cache, pi_os).glob("tensorflow*"))
    report = run_tledge(pi_os, cpu, ["doctor"])
    python = next(line for line in report.splitlines() if line[5:].startswith("python "))
    assert f" {pi_os.python}." in python, report
    assert f"Debian GNU/Linux {pi_os.release}" in report and "aarch64, 64-bit" in report, report
    assert "tledge edge will use litert" in report, report
    assert "runtime tensorflow      not installed" in report, report


@pytest.mark.parametrize(("pi_os", "cpu"), SYSTEMS)
def test_embedded_self_test_passes_in_a_model_folder(
    run_tledge, food_case: EdgeCase, tmp_path: Path, pi_os, cpu
):
    """`tledge edge --model-dir` starts only on a model that passes its embedded self-test
    (the held-out photos `tledge export` stored with the file's answers), so a run that
    classifies proves the emulated Pi computes what this machine computed at export.
    Checked that it can fail: a copy of a tiny exported int8 model whose first embedded
    score was raised by 0.2 ends "no usable model" on emulated Pi OS 13 (Cortex-A72)."""
    from tledge.edge.model_file import read_model_metadata

    assert read_model_metadata(food_case.model).golden, "the food model embeds no examples"
    models = tmp_path / "models"
    models.mkdir()
    (models / "food-v1.tflite").write_bytes(food_case.model.read_bytes())
    photo = next(food_case.photos.iterdir())
    arguments = ["edge", "--model-dir", str(models), "--source", str(photo)]
    jsonl = run_tledge(pi_os, cpu, [*arguments, "--no-display", "--jsonl", "-"])
    assert top_k_by_photo(jsonl), jsonl
