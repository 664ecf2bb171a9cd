"""Results are never lost: `SweepResult.save` / `load` and `jaxmdp._io` under kills, Ctrl-C,
a full disk, and files edited, truncated or crafted by someone else.

Writers are real processes killed at random moments (SIGKILL, SIGINT) while they save one of
two results over and over; whatever is left must load as one of the two. No solve is needed:
the results are built from seeded NumPy arrays (`RESULTS_CODE`, run by the child and here).
"""

from __future__ import annotations

import errno
import os
import pickle
import select
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import jaxmdp
from jaxmdp import _format, _io

# Two results of a 120 x 40 grid of 16-state, 4-action MDPs (a few MB of npz and csv, so a
# save takes long enough for a signal to land inside it). Shared with the child processes.
RESULTS_CODE = """
import numpy as np
import jaxmdp

def make(seed, grid=(120, 40)):
    rng = np.random.default_rng(seed)
    S, A = 16, 4
    q = rng.standard_normal(grid + (S, A)).astype(np.float32)
    sol = jaxmdp.Solution(
        values=q.max(-1), q_values=q, policy=q.argmax(-1).astype(np.int32),
        status=np.zeros(grid, np.int32), num_iters=rng.integers(1, 99, grid).astype(np.int32),
        residual=rng.random(grid).astype(np.float32),
        error_bound=(1e-6 * rng.random(grid)).astype(np.float32))
    axes = {"a": np.linspace(-1, 1, grid[0]), "b": np.linspace(0.5, 0.99, grid[1])}
    return jaxmdp.SweepResult(axes=axes, solution=sol, depends={"rewards": ("a",)},
                              chunk_size=seed + 1, num_chunks=1, tile_size=256)

RESULTS = [make(0), make(1)]
"""
_ns: dict = {}
exec(RESULTS_CODE, _ns)  # noqa: S102 - the same two results as the children build
RESULTS = _ns["RESULTS"]
SMALL = [_ns["make"](k, (6, 5)) for k in (0, 1)]  # for the tests that need no signal timing

# Ctrl-C as a user's terminal delivers it, even where the test runner was started in the
# background (a shell then ignores SIGINT for its children, and Python keeps that).
WRITER = (
    "import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
    + RESULTS_CODE
    + """
import signal, sys
path = sys.argv[1]
RESULTS[0].save(path)
print("ready", flush=True)
k, inside = 1, 0
while True:
    try:
        RESULTS[k % 2].save(path)
        k += 1
    except KeyboardInterrupt as e:  # report where the interrupt landed, wait to go on
        # A repeated Ctrl-C (the test presses again when a loaded machine is slow to answer)
        # must not land in this report and end the writer: ignored until it goes on.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        tb, names = e.__traceback__, []
        while tb is not None:
            names.append(tb.tb_frame.f_code.co_name)
            tb = tb.tb_next
        print("interrupted", int("save" in names), flush=True)
        sys.stdin.readline()
        signal.signal(signal.SIGINT, signal.default_int_handler)
"""
)


def same(a, b) -> bool:
    return (
        a.names == b.names
        and all(np.array_equal(a.axes[n], b.axes[n]) for n in a.names)
        and all(
            np.array_equal(getattr(a.solution, f), getattr(b.solution, f), equal_nan=True)
            for f in jaxmdp.Solution._fields
        )
        and a.chunk_size == b.chunk_size
    )


@pytest.fixture(scope="module")
def expected_csv(tmp_path_factory):
    d = tmp_path_factory.mktemp("expected")
    return [Path(r.save(d / f"r{i}")[1]).read_bytes() for i, r in enumerate(RESULTS)]


def which(base: Path, expected_csv) -> tuple[int, int]:
    """(index of the result the npz holds, index of the csv's); asserts both are whole."""
    loaded = jaxmdp.SweepResult.load(base.with_suffix(".npz"))
    npz = [k for k, r in enumerate(RESULTS) if same(loaded, r)]
    csv = [k for k, c in enumerate(expected_csv) if base.with_suffix(".csv").read_bytes() == c]
    assert len(npz) == 1, "the npz is neither the old result nor the new one"
    assert len(csv) == 1, "the csv is neither the old table nor the new one"
    return npz[0], csv[0]


def start_writer(path: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    if not select.select([proc.stdout], [], [], 300)[0]:  # the first save is done
        proc.kill()
        pytest.fail("the writer did not start within 300 s")
    line = proc.stdout.readline()
    assert line.strip() == "ready", proc.communicate(timeout=60)
    return proc


def test_sigkill_at_random_moments_leaves_a_loadable_result(tmp_path, expected_csv):
    rng = np.random.default_rng(7)
    base = tmp_path / "sweep"
    for _ in range(2):
        proc = start_writer(base)
        try:
            time.sleep(rng.uniform(0.05, 0.8))
        finally:
            proc.kill()
            proc.wait(timeout=60)
        which(base, expected_csv)  # each file whole: the old result or the new one
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert len(leftovers) <= 2 * 2  # at most the temporaries of the saves that were killed


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and pipes")
def test_ctrl_c_at_random_moments_leaves_old_or_new_pair(tmp_path, expected_csv):
    """KeyboardInterrupt inside save: the pair is consistent (renames are never split by
    Ctrl-C), the temporaries are removed, and the writer can go on."""
    rng = np.random.default_rng(11)
    base = tmp_path / "sweep"
    proc = start_writer(base)
    landed = 0
    try:
        for _ in range(8):
            time.sleep(rng.uniform(0.02, 0.6))
            for _ in range(5):  # Python drops a signal that lands in a gc callback (JAX has
                proc.send_signal(signal.SIGINT)  # one): press Ctrl-C again, as a user would
                if select.select([proc.stdout], [], [], 10)[0]:
                    break
            else:
                pytest.fail("the writer ignored 5 interrupts")
            line = proc.stdout.readline().split()  # EOF if the child died: fails, no hang
            assert line[:1] == ["interrupted"], line
            landed += int(line[1])
            npz, csv = which(base, expected_csv)
            assert npz == csv
            assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
            proc.stdin.write("go\n")
            proc.stdin.flush()
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert landed >= 3, f"only {landed} of 8 interrupts landed inside save"


def test_ctrl_c_inside_a_writers_cleanup_stays_a_keyboard_interrupt(tmp_path):
    """numpy's savez turns a Ctrl-C inside `zipfile.open` into "ValueError: Can't close the
    ZIP file while there is an open writing handle" (seen in the test above)."""
    for context in (_io.atomic_file(tmp_path / "a"), _io.atomic_files([(tmp_path / "b", "w")])):
        with pytest.raises(KeyboardInterrupt), context:
            try:
                raise KeyboardInterrupt
            finally:
                raise ValueError("Can't close the ZIP file while there is an open handle")
    with pytest.raises(ValueError), _io.atomic_file(tmp_path / "c"):
        raise ValueError("a plain error stays what it is")
    assert os.listdir(tmp_path) == []


class _FullDisk:
    """A file whose writes fail with ENOSPC once `budget` bytes have been written."""

    def __init__(self, f, budget):
        self._f, self._budget = f, budget

    def write(self, data):
        if len(data) > self._budget[0]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._budget[0] -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.7, 0.99, "fsync"])
def test_full_disk_leaves_the_previous_files(tmp_path, monkeypatch, fraction):
    old, new = SMALL
    npz, csv = old.save(tmp_path / "sweep")
    before = {p: Path(p).read_bytes() for p in (npz, csv)}
    total = sum(len(b) for b in before.values())  # about what the new save writes
    real_fdopen, real_fsync = os.fdopen, os.fsync
    if fraction == "fsync":  # delayed allocation: the error comes at fsync

        def fsync(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "fsync", fsync)
    else:
        budget = [int(fraction * total)]
        monkeypatch.setattr(os, "fdopen", lambda *a, **k: _FullDisk(real_fdopen(*a, **k), budget))
    with pytest.raises(OSError) as info:
        new.save(tmp_path / "sweep")
    assert info.value.errno == errno.ENOSPC
    monkeypatch.setattr(os, "fdopen", real_fdopen)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert {p: Path(p).read_bytes() for p in (npz, csv)} == before
    assert same(jaxmdp.SweepResult.load(npz), old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.csv", "sweep.npz"]


# -- load: one clear error for anything but a whole sweep file -----------------------------------


@pytest.fixture(scope="module")
def good_npz(tmp_path_factory):
    return Path(SMALL[0].save(tmp_path_factory.mktemp("good") / "sweep")[0])


def arrays_of(path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def assert_refused(path, match=None):
    with pytest.raises(ValueError, match=match) as info:
        jaxmdp.SweepResult.load(path)
    assert str(path) in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("keep", [0, 10, 100, 1000, 0.5, 0.9, -1])
def test_truncated_files_are_refused(good_npz, tmp_path, keep):
    data = good_npz.read_bytes()
    n = int(keep * len(data)) if isinstance(keep, float) else keep % len(data)
    bad = tmp_path / "cut.npz"
    bad.write_bytes(data[:n])
    assert_refused(bad)


def test_flipped_bytes_are_refused_or_harmless(good_npz, tmp_path):
    data = bytearray(good_npz.read_bytes())
    rng = np.random.default_rng(3)
    refused = 0
    for i, pos in enumerate(rng.integers(0, len(data), 40)):
        bad = bytearray(data)
        bad[pos] ^= 0xFF
        path = tmp_path / f"flip{i}.npz"
        path.write_bytes(bytes(bad))
        try:
            back = jaxmdp.SweepResult.load(path)
        except ValueError as e:
            assert str(path) in str(e)
            refused += 1
        else:  # a byte nobody reads (a time stamp...): the data must be intact
            assert same(back, SMALL[0])
    assert refused >= 30


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda a: a.pop("solution.values"), "solution.values' is missing"),
        (lambda a: a.pop("axis_names"), "no 'axis_names'"),
        (lambda a: a.pop("axis.b"), "'axis.b' is missing"),
        (lambda a: a.update({"solution.policy": a["solution.policy"][:-1]}), "shape"),
        (lambda a: a.update({"solution.status": a["solution.status"].astype(float)}), "dtype"),
        (lambda a: a.update({"axis.a": a["axis.a"][:, None]}), "1-D numeric"),
        (lambda a: a.update({"meta": np.array("{not json")}), "JSON"),
        (lambda a: a.update({"meta": np.array('{"chunk_size": "x"}')}), "chunk_size"),
        (lambda a: a.update({"meta": np.array('{"evil": 1}')}), "unknown keys"),
        (lambda a: a.update({"meta": np.array('{"depends": {"rewards": ["zz"]}}')}), "depends"),
        (lambda a: a.update({"format": np.array("other/9")}), "unknown format"),
        (lambda a: a.update({"extra": np.zeros(3)}), "unexpected arrays"),
        (lambda a: a.update({"axis_names": np.array(["a", "a"])}), "repeat"),
    ],
)
def test_edited_files_are_refused_with_what_is_wrong(good_npz, tmp_path, edit, match):
    arrays = arrays_of(good_npz)
    edit(arrays)
    path = tmp_path / "edited.npz"
    np.savez(path, **arrays)
    assert_refused(path, match)


class _Evil:
    def __reduce__(self):
        return (open, (os.environ["JAXMDP_TEST_PWNED"], "w"))


def test_foreign_and_crafted_files_are_refused_without_unpickling(tmp_path, monkeypatch):
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.arange(3))
    assert_refused(foreign, "axis_names")
    text = tmp_path / "text.npz"
    text.write_text("hello")
    assert_refused(text, "not an .npz")
    # an object array whose unpickling would create a file
    pwned = tmp_path / "pwned"
    monkeypatch.setenv("JAXMDP_TEST_PWNED", str(pwned))
    evil = tmp_path / "evil.npz"
    arrays = arrays_of(Path(SMALL[0].save(tmp_path / "ok")[0]))
    arrays["axis_names"] = np.array([_Evil()], dtype=object)
    np.savez(evil, **arrays)
    assert_refused(evil, "Python objects")
    assert not pwned.exists()
    # a pickle named .npz
    pickled = tmp_path / "pickled.npz"
    pickled.write_bytes(pickle.dumps(_Evil()))
    assert_refused(pickled)
    assert not pwned.exists()
    # a header declaring a terabyte of data in a few bytes: refused before allocating
    bomb = tmp_path / "bomb.npz"
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
    header["shape"] = (10**11,)
    with zipfile.ZipFile(bomb, "w") as zf, zf.open("axis_names.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 64)
    assert_refused(bomb, "declares")
    with pytest.raises(FileNotFoundError):
        jaxmdp.SweepResult.load(tmp_path / "missing")


# -- the printed precision -------------------------------------------------------------------


def test_csv_and_summary_show_certified_digits(tmp_path):
    """Values within error_bound of 0 are 0 in the csv; no digit below the bound is shown;
    the arrays and the npz keep every bit."""
    r = SMALL[0]
    q = np.array(r.solution.q_values)
    q[..., 3, :] = np.float32(-3.81e-7)  # an absorbing zero-reward state, as VI returns it
    sol = r.solution._replace(q_values=q, values=q.max(-1))
    noisy = jaxmdp.SweepResult(axes=r.axes, solution=sol, depends=r.depends)
    npz, csv_path = noisy.save(tmp_path / "s")
    rows = Path(csv_path).read_text().splitlines()
    head = rows[0].split(",")
    first = dict(zip(head, rows[1].split(","), strict=True))
    assert first["value_3"] == "0.0"
    bound = float(noisy.error_bound[0, 0])
    for s in range(16):
        shown, exact = float(first[f"value_{s}"]), float(noisy.values[0, 0, s])
        res = float(_format.resolution(noisy.values[0, 0], bound))
        assert abs(shown - exact) <= res + 10 ** np.floor(np.log10(res))
        assert len(first[f"value_{s}"].split(".")[-1]) <= -np.floor(np.log10(res))
    assert float(first["error_bound"]) >= bound  # rounded up, never down
    assert same(jaxmdp.SweepResult.load(npz), noisy)  # the npz is exact
    assert np.array_equal(noisy.values, sol.values)
    assert "Certified: the values of every member" in noisy.summary()


def test_format_helpers():
    v = np.array([[0.7053021, -3.81e-7, 2.48e-7, 1.0]], np.float32)
    assert list(_format.format_values(v, np.float32([4.8e-7]))[0]) == [
        "0.705302",
        "0",
        "0",
        "1.000000",
    ]
    # float32 values of magnitude 123 carry rounding noise of ~6e-5 whatever the bound says
    v[0, 3] = 123.456
    assert list(_format.format_values(v, [4.8e-7])[0]) == ["0.7053", "0", "0", "123.4560"]
    assert list(_format.format_values(v, [1e-3])[0]) == ["0.705", "0", "0", "123.456"]
    assert _format.format_value(1234.5, 30) == "1200"
    assert _format.format_value(float("nan"), 1) == "nan"
    assert _format.round_values(np.float32([-2e-7, 1.0]), 1e-6).tolist() == [0.0, 1.0]
    assert str(_format.round_values(np.float32([-2e-7]), 1e-6)[0]) == "0.0"  # never -0
    assert _format.format_bound(4.8e-7) == "4.8e-07"
    assert _format.format_bound(0.01231) == "0.013"
    assert _format.format_bound(0) == "0" and _format.format_bound(np.inf) == "inf"
    # no certificate (bound inf or 0): only the dtype's resolution (4 ulp of max|V|) applies
    assert _format.format_values(np.float32([1.0, 3e-7]), np.inf).tolist() == ["1.000000", "0"]


# -- result sets: a whole output folder replaced as one unit ---------------------------------


def test_result_set_swaps_a_folder_as_a_unit(tmp_path):
    out = tmp_path / "out"
    with _io.result_set(out) as stage:
        written = SMALL[0].write_outputs(stage, summary="first")
        (stage / "plot.png").write_bytes(b"png")
    assert sorted(p.name for p in written) == ["summary.txt", "sweep.csv", "sweep.npz"]
    assert (out / "summary.txt").read_text() == "first\n"
    with pytest.raises(RuntimeError), _io.result_set(out) as stage:  # fails half way
        SMALL[1].write_outputs(stage, summary="second")
        raise RuntimeError("plotting failed")
    assert (out / "summary.txt").read_text() == "first\n"  # untouched, nothing mixed
    assert same(jaxmdp.SweepResult.load(out / "sweep"), SMALL[0])
    with _io.result_set(out) as stage:
        SMALL[1].write_outputs(stage)
    assert not (out / "plot.png").exists()  # the old set's files do not survive
    assert "30 MDPs solved" in (out / "summary.txt").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging left behind


def test_result_set_never_replaces_a_foreign_folder(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError, match="thesis.tex"):
        _io.check_result_set(home)
    with pytest.raises(FileExistsError), _io.result_set(home) as stage:
        (stage / "x").write_text("x")
    assert (home / "thesis.tex").read_text() == "years of work"
    legacy = tmp_path / "legacy"  # an output folder of an older version: no marker
    legacy.mkdir()
    (legacy / "sweep.npz").write_bytes(b"")
    with _io.result_set(legacy, replaceable=("sweep.*",)) as stage:
        (stage / "new").write_text("y")
    assert sorted(os.listdir(legacy)) == [_io.MARKER, "new"]
    with pytest.raises(PermissionError):
        if os.geteuid() == 0:  # root writes anywhere: simulate the refusal
            raise PermissionError
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        _io.check_result_set(ro / "out")
