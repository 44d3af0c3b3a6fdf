"""Fault injection: every probe gives a clear, named error or keeps the result intact.

Data: corrupt or altered files, stale decoded caches, concurrent decoding, a network that
never answers, offline mode. The runner: flags and parameters given wrongly, unreadable
result files, runs with overrides, two runs of one result at once, file modes, and what a
resumed run records.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import multiprocessing
import os
import re
import socket
import subprocess
import sys
import threading
import time
import zipfile

import numpy as np
import pytest

from conftest import jpeg_npz_bytes
from replib import data
from replib import experiments
from replib import results as store
from replib._validate import ConfigError
from replib.data import DataIntegrityError, DataNotFoundError
from replib.results import REPO_ROOT
from test_results import fake_experiment

# --------------------------------------------------------------------------- data

MIRROR_REMEDY = re.escape("sha256sum -c SHA256SUMS")
CACHE_REMEDY = "to download it again"
LABELS = [0, 1, 2, 3, 4, 5, 6, 7]


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_truncated_mnist_gz_is_named_with_both_hashes_and_the_remedy(fake_data):
    fake_data.mnist()
    path = fake_data.mirror / "mnist" / "t10k-images-idx3-ubyte.gz"
    expected = data.REGISTRY["mnist/t10k-images-idx3-ubyte.gz"]
    path.write_bytes(path.read_bytes()[:-100])
    message = (f"{path} (mnist/t10k-images-idx3-ubyte.gz) is corrupt or not the expected release: "
               f"it has sha256 {sha256(path.read_bytes())}, expected sha256 {expected}.")
    with pytest.raises(DataIntegrityError, match=re.escape(message) + ".*" + MIRROR_REMEDY):
        data.load_mnist("test")


def test_flipped_byte_in_a_gz_is_caught_by_its_hash(fake_data):
    fake_data.mnist()
    path = fake_data.mirror / "mnist" / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01
    path.write_bytes(bytes(content))
    with pytest.raises(DataIntegrityError, match=re.escape(f"{path} (mnist/t10k-labels-idx1-ubyte.gz) is corrupt")
                       + ".*" + MIRROR_REMEDY):
        data.load_mnist("test")


def test_corrupt_file_in_the_cache_says_delete_it(fake_data):
    fake_data.mnist(where="cache")
    path = fake_data.cache / "mnist" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(DataIntegrityError, match=re.escape(f"{path} (mnist/t10k-labels-idx1-ubyte.gz) is corrupt")
                       + ".*" + re.escape(f"Delete {path} {CACHE_REMEDY}")):
        data.load_mnist("test")


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "not gzip"])
def test_broken_gzip_is_named_even_when_its_hash_was_registered(fake_data, damage):
    """Decoding errors never escape raw (EOFError, BadGzipFile, zlib.error), whatever the registry says."""
    fake_data.mnist()
    content = bytearray(gzip.compress(np.random.default_rng(0).bytes(1000), mtime=0))
    if damage == "truncated":
        content = content[: len(content) // 2]
    elif damage == "flipped byte":
        content[len(content) // 2] ^= 0x01
    else:
        content = b"plain bytes, not gzip"
    path = fake_data.put("mnist/t10k-labels-idx1-ubyte.gz", bytes(content))
    with pytest.raises(DataIntegrityError, match=re.escape(f"{path} (mnist/t10k-labels-idx1-ubyte.gz) is not a valid gzip file")
                       + ".*" + MIRROR_REMEDY):
        data.load_mnist("test")


def test_corrupt_cifar_npz_is_caught_by_its_hash(fake_data):
    path = fake_data.put("cifar10/cifar10_test_jpeg.npz", jpeg_npz_bytes(LABELS))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataIntegrityError, match=re.escape(f"{path} (cifar10/cifar10_test_jpeg.npz) is corrupt")
                       + ".*" + MIRROR_REMEDY):
        data.load_cifar10("test")


def test_cifar_npz_with_altered_labels_is_caught_by_its_hash(fake_data):
    path = fake_data.put("cifar10/cifar10_test_jpeg.npz", jpeg_npz_bytes(LABELS))
    with np.load(path) as z:
        arrays = dict(z)
    arrays["labels"] = arrays["labels"][::-1].copy()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    assert zipfile.is_zipfile(path)
    with pytest.raises(DataIntegrityError, match=re.escape(f"{path} (cifar10/cifar10_test_jpeg.npz) is corrupt")
                       + ".*" + MIRROR_REMEDY):
        data.load_cifar10("test")


def test_cifar_npz_that_is_not_a_zip_is_named_even_when_its_hash_was_registered(fake_data):
    path = fake_data.put("cifar10/cifar10_test_jpeg.npz", jpeg_npz_bytes(LABELS)[:500])
    with pytest.raises(DataIntegrityError, match=re.escape(f"{path} (cifar10/cifar10_test_jpeg.npz) is not a readable "
                                                           "CIFAR-10 JPEG npz") + ".*" + MIRROR_REMEDY):
        data.load_cifar10("test")


def test_cifar_npz_without_its_keys_is_named_even_when_its_hash_was_registered(fake_data):
    buffer = io.BytesIO()
    np.savez(buffer, jpeg=np.zeros(3, dtype=np.uint8), labels=np.zeros(1, dtype=np.uint8))
    path = fake_data.put("cifar10/cifar10_test_jpeg.npz", buffer.getvalue())
    with pytest.raises(DataIntegrityError, match=re.escape(f"{path} (cifar10/cifar10_test_jpeg.npz) is not a readable "
                                                           "CIFAR-10 JPEG npz with keys jpeg, offsets, labels (KeyError")):
        data.load_cifar10("test")


def test_decoded_cache_does_not_survive_a_fixed_mirror(fake_data):
    fake_data.put("cifar10/cifar10_test_jpeg.npz", jpeg_npz_bytes([9] * 8))  # wrong labels, registered
    assert data.load_cifar10("test").labels.tolist() == [9] * 8
    fake_data.put("cifar10/cifar10_test_jpeg.npz", jpeg_npz_bytes(LABELS))  # the fixed mirror and its hash
    assert data.load_cifar10("test").labels.tolist() == LABELS


def test_decoded_cache_is_used_once_the_work_is_done(fake_data, monkeypatch):
    fake_data.put("cifar10/cifar10_test_jpeg.npz", jpeg_npz_bytes(LABELS))
    first = data.load_cifar10("test")

    def must_not_decode(*args):
        raise AssertionError("decoded again although the decoded cache was there")

    monkeypatch.setattr(data, "_decode_jpeg_npz", must_not_decode)
    again = data.load_cifar10("test")
    assert again.labels.tolist() == LABELS and bool((again.images == first.images).all())


def _load_in_child(queue) -> None:
    try:
        split = data.load_cifar10("test")
        queue.put(("ok", split.labels.tolist(), sha256(split.images.numpy().tobytes())))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test with it
        queue.put(("error", repr(exc), ""))


def test_two_processes_decoding_cifar_at_once_both_succeed(fake_data, monkeypatch):
    fake_data.put("cifar10/cifar10_test_jpeg.npz", jpeg_npz_bytes(LABELS))
    context = multiprocessing.get_context("fork")  # the children inherit the fake registry
    barrier, queue = context.Barrier(2), context.Queue()
    decode = data._decode_jpeg_npz

    def decode_then_wait(*args):
        decoded = decode(*args)
        barrier.wait(timeout=10)  # neither writes its cache before both have decoded
        return decoded

    monkeypatch.setattr(data, "_decode_jpeg_npz", decode_then_wait)
    children = [context.Process(target=_load_in_child, args=(queue,)) for _ in range(2)]
    for child in children:
        child.start()
    outcomes = [queue.get(timeout=20) for _ in children]
    for child in children:
        child.join(timeout=10)
    assert [o[0] for o in outcomes] == ["ok", "ok"], outcomes
    assert outcomes[0] == outcomes[1] and outcomes[0][1] == LABELS
    cached = sorted(p.name for p in (fake_data.cache / "cifar10").iterdir())
    assert len(cached) == 1 and cached[0].startswith("cifar10_test_jpeg_decoded-sha256-"), cached


@pytest.fixture
def silent_server():
    """A TCP listener on 127.0.0.1 that accepts connections and never answers; yields (URL, connections)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.05)
    held, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/co2/f.csv", held
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


@pytest.fixture
def downloadable(fake_data, monkeypatch, silent_server):
    """A registered file found nowhere offline, whose source is the silent server; downloads allowed."""
    url, _ = silent_server
    fake_data.put("co2/f.csv", b"x")
    (fake_data.mirror / "co2" / "f.csv").unlink()
    monkeypatch.setitem(data.SOURCES, "co2/f.csv", data.Source((url,)))
    monkeypatch.delenv(data.OFFLINE_ENV)
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return url


def test_unanswering_server_times_out_naming_the_url(downloadable, monkeypatch):
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT", 0.5)
    monkeypatch.setattr(data, "DOWNLOAD_RETRIES", 0)
    start = time.perf_counter()
    with pytest.raises(DataNotFoundError, match=re.escape(f"download failed: {downloadable}: no answer within 0.5 s")
                       + "(.|\n)*" + re.escape(f"export {data.MIRROR_ENV}=")):
        data.find_file("co2/f.csv")
    assert time.perf_counter() - start < 3


def test_failed_download_is_tried_again(downloadable, silent_server, monkeypatch):
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT", 0.2)
    monkeypatch.setattr(data, "DOWNLOAD_RETRIES", 1)
    with pytest.raises(DataNotFoundError, match=re.escape(downloadable)):
        data.find_file("co2/f.csv")
    assert len(silent_server[1]) == 2


def test_offline_mode_attempts_no_download(downloadable, silent_server, monkeypatch, fake_data):
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    with pytest.raises(DataNotFoundError, match=re.escape(f"download skipped: offline mode is on (${data.OFFLINE_ENV}=1)")) as info:
        data.find_file("co2/f.csv")
    assert str(fake_data.mirror / "co2" / "f.csv") in str(info.value) and str(fake_data.cache / "co2" / "f.csv") in str(info.value)
    time.sleep(0.1)  # a connection, had one been made, would be accepted by now
    assert silent_server[1] == []


# --------------------------------------------------------------------------- the runner

NAMESPACE = {"profile": "smoke", "seeds": None, "device": "cpu", "rerun": True, "epochs": None, "hidden": None,
             "threads": None, "progress": False, "experiments": experiments, "In": [], "Out": {}, "_": None}


# --------------------------------------------------------------------------- flags and parameters


@pytest.mark.parametrize("name", ["rerun", "progress", "stack"])
@pytest.mark.parametrize("text", ["false", "true", "False"])
def test_a_flag_given_as_text_is_refused_saying_how_to_pass_it(name, text):
    """`-p rerun false` reaches the notebook as the string 'false', which is truthy."""
    with pytest.raises(ValueError, match=rf"^{name} must be True or False, got '{text}' \(str\); in papermill write "
                                         rf"`-p {name} True` or `-p {name} False` \(it converts only those two words\)$"):
        experiments.run(fake_experiment(), "smoke", **{"progress": False, name: text})


def test_a_misspelt_parameter_is_refused_naming_the_close_ones():
    namespace = {**NAMESPACE, "epoch": 2}
    with pytest.raises(ConfigError, match=r"^notebooks/hinton2012\.ipynb has no parameter 'epoch' \(did you mean "
                                          r"'epochs'\?\)\. Its parameters: profile, seeds, device, executor, rerun, epochs, "):
        experiments.check_parameters(namespace, "hinton2012")


def test_a_parameter_papermill_injected_is_refused_even_if_the_notebook_assigns_it_later():
    """`result` is assigned by the chapter's own code, so injecting it would be silently overwritten."""
    namespace = {**NAMESPACE, "result": 3, "In": ["", "profile: str = 'cpu'", "# Parameters\nresult = 3\n"]}
    with pytest.raises(ConfigError, match=r"^notebooks/hinton2012\.ipynb has no parameter 'result' \(nothing close\)\."):
        experiments.check_parameters(namespace, "hinton2012")


def test_the_declared_parameters_and_the_notebooks_own_names_pass():
    """Papermill's injection of declared names, its own paths, and a second run of the cells by hand."""
    injected = "# Parameters\nprofile = 'smoke'\nepochs = 2\nPAPERMILL_INPUT_PATH = 'in.ipynb'\n"
    namespace = {**NAMESPACE, "epochs": 2, "PAPERMILL_INPUT_PATH": "in.ipynb", "result": {}, "In": ["", injected]}
    experiments.check_parameters(namespace, "hinton2012")


@pytest.mark.slow
def test_papermill_with_a_misspelt_parameter_fails_naming_the_right_one(tmp_path, needs_mnist):
    proc = subprocess.run([sys.executable, "-m", "papermill", str(REPO_ROOT / "notebooks" / "hinton2012.ipynb"),
                           str(tmp_path / "out.ipynb"), "-p", "profile", "smoke", "-p", "epoch", "2",
                           "-p", "progress", "False", "--cwd", str(REPO_ROOT)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "ConfigError" in proc.stderr and "has no parameter 'epoch' (did you mean 'epochs'?)" in proc.stderr
    assert not (tmp_path / "results").exists(), "it trained before refusing the parameter"


# --------------------------------------------------------------------------- unreadable result files


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_truncated_result_is_a_result_file_error_naming_it():
    good = experiments.run(fake_experiment(), "smoke", progress=False)
    text = json.dumps(good, indent=1)
    path = write(good.path, text[: len(text) // 2])
    with pytest.raises(store.ResultFileError, match=rf"^{re.escape(str(path))} is truncated: the JSON stops before "
                                                    rf"it is complete, inside an unclosed object, array or string .*\. Restore it from version control, or rerun "
                                                    rf"with `python -m replib reproduce \.\.\. --rerun`"):
        experiments.run(fake_experiment(), "smoke", progress=False)


def test_a_conflicted_result_is_a_result_file_error_naming_it():
    path = write(store.result_path("fake2099", "smoke"),
                 '{\n<<<<<<< HEAD\n "paper": "fake2099",\n=======\n "paper": "fake2099",\n>>>>>>> theirs\n}\n')
    with pytest.raises(store.ResultFileError, match=rf"^{re.escape(str(path))} holds unresolved merge-conflict "
                                                    rf"markers \(<<<<<<< at line 2\); keep one side"):
        experiments.run(fake_experiment(), "smoke", progress=False)


def test_an_empty_partial_file_is_a_result_file_error_naming_it():
    path = write(store.partial_path(store.result_path("fake2099", "smoke")), "")
    with pytest.raises(store.ResultFileError, match=rf"^{re.escape(str(path))} is empty\. Restore it"):
        experiments.run(fake_experiment(), "smoke", progress=False)


def test_rerun_moves_an_unreadable_result_and_partial_aside_and_says_so(capsys):
    path = write(store.result_path("fake2099", "smoke"), '{"paper": ')
    partial = write(store.partial_path(path), "<<<<<<< HEAD\n")
    result = experiments.run(fake_experiment(), "smoke", rerun=True, progress=False)
    assert result.written and json.loads(path.read_text()) == result and not partial.exists()
    aside = sorted(p.name for p in path.parent.iterdir() if ".corrupt-" in p.name)
    assert [re.sub(r"corrupt-\d{8}T\d{6}Z$", "corrupt-T", name) for name in aside] == [
        "smoke.json.corrupt-T", "smoke.partial.json.corrupt-T"]
    assert (path.parent / aside[0]).read_text() == '{"paper": '  # kept as it was, never deleted
    err = capsys.readouterr().err
    assert f"{path} could not be read, so this rerun moved it aside to {aside[0]}: " in err
    assert f"{partial} could not be read, so this rerun moved it aside to {aside[1]}: " in err


# --------------------------------------------------------------------------- overrides


def test_a_run_with_overrides_is_stored_apart_and_leaves_the_profiles_result_alone():
    default = experiments.run(fake_experiment(), "smoke", progress=False)
    before = default.path.read_bytes()
    crashing = fake_experiment(fail_on_call=2)
    with pytest.raises(KeyboardInterrupt, match="^simulated interruption$"):
        experiments.run(crashing, "smoke", epochs=3, progress=False)
    config, seeds = experiments.resolve(crashing, "smoke", epochs=3)
    apart = store.result_path("fake2099", "smoke", key=store.config_key(config, seeds))
    assert store.partial_path(apart).name == f"smoke-{store.config_key(config, seeds)}.partial.json"
    assert store.partial_path(apart).is_file() and not store.partial_path(default.path).exists()
    result = experiments.run(fake_experiment(), "smoke", epochs=3, progress=False)
    assert result.path == apart and json.loads(apart.read_text())["config"]["epochs"] == 3
    assert default.path.read_bytes() == before
    assert experiments.run(fake_experiment(), "smoke", progress=False) == default  # the book's file, untouched


# --------------------------------------------------------------------------- two runs at once


def blocking_experiment(block_on_call: int):
    """A fake experiment whose run_one stops at the n-th call until ``release`` is set."""
    module = fake_experiment()
    module.reached, module.release = threading.Event(), threading.Event()
    run_one = module.run_one

    def blocking(config, arm, seed, progress=True):
        if len(module.calls) + 1 == block_on_call:
            module.reached.set()
            assert module.release.wait(30), "never released"
        return run_one(config, arm, seed, progress)

    module.run_one = blocking
    return module


def in_thread(module, out: dict):
    def target():
        try:
            out["result"] = experiments.run(module, "smoke", progress=False)
        except BaseException as error:  # handed to the test
            out["error"] = error
    thread = threading.Thread(target=target)
    thread.start()
    return thread


def test_a_second_run_of_the_same_result_fails_naming_the_lock_and_the_first_run(monkeypatch):
    monkeypatch.setattr(store, "LOCK_TIMEOUT_S", 0.3)
    first, out = blocking_experiment(block_on_call=2), {}
    thread = in_thread(first, out)
    try:
        assert first.reached.wait(30)
        path = store.result_path("fake2099", "smoke")
        second = fake_experiment()
        lock = re.escape(str(store.lock_path(path)))
        with pytest.raises(store.ResultLockedError, match=rf"^{re.escape(str(path))} is being made by another run "
                                                          rf"\(pid {os.getpid()} on .*\), which holds the lock {lock}; "
                                                          rf"gave up after 0 s"):
            experiments.run(second, "smoke", progress=False)
        assert second.calls == []
        partial = json.loads(store.partial_path(path).read_text())
        assert [(r["arm"], r["seed"]) for r in partial["runs"]] == [("a", 0)]  # the first run's work, untouched
    finally:
        first.release.set()
        thread.join(30)
    assert "error" not in out and len(out["result"]["runs"]) == 4 and out["result"].written
    assert json.loads(path.read_text()) == out["result"] and not store.partial_path(path).exists()


def test_a_run_that_waits_for_another_reads_its_result_instead_of_training(monkeypatch):
    monkeypatch.setattr(store, "LOCK_TIMEOUT_S", 30)
    first, first_out = blocking_experiment(block_on_call=3), {}
    second, second_out = fake_experiment(), {}
    first_thread = in_thread(first, first_out)
    assert first.reached.wait(30)
    second_thread = in_thread(second, second_out)
    second_thread.join(0.3)
    assert second_thread.is_alive(), "the second run did not wait for the first"
    first.release.set()
    first_thread.join(30)
    second_thread.join(30)
    assert "error" not in first_out and "error" not in second_out
    assert second.calls == [] and not second_out["result"].written
    assert second_out["result"] == first_out["result"]


# --------------------------------------------------------------------------- what is written


def test_result_and_partial_files_are_written_readable_by_everyone():
    with pytest.raises(KeyboardInterrupt, match="^simulated interruption$"):
        experiments.run(fake_experiment(fail_on_call=2), "smoke", progress=False)
    path = store.result_path("fake2099", "smoke")
    assert store.partial_path(path).stat().st_mode & 0o777 == 0o644
    experiments.run(fake_experiment(), "smoke", progress=False)
    assert path.stat().st_mode & 0o777 == 0o644


def test_a_result_is_written_only_when_the_run_trained():
    first = experiments.run(fake_experiment(), "smoke", progress=False)
    written = first.path.stat().st_mtime_ns
    again = experiments.run(fake_experiment(), "smoke", progress=False)
    assert first.written and not again.written and again.trained == []
    assert first.path.stat().st_mtime_ns == written


def test_a_resumed_run_keeps_its_start_time_and_records_each_resume():
    path = store.result_path("fake2099", "smoke")
    with pytest.raises(KeyboardInterrupt, match="^simulated interruption$"):
        experiments.run(fake_experiment(fail_on_call=3), "smoke", progress=False)
    partial = json.loads(store.partial_path(path).read_text())
    assert partial["provenance"]["resumed"] == []
    partial["provenance"]["started"] = "2020-01-02T03:04:05+00:00"  # as if it had begun long ago
    store.write_json_atomic(store.partial_path(path), partial)
    before = store.now().replace(microsecond=0)
    with pytest.raises(KeyboardInterrupt, match="^simulated interruption$"):
        experiments.run(fake_experiment(fail_on_call=2), "smoke", progress=False)
    result = experiments.run(fake_experiment(), "smoke", progress=False)
    prov = result["provenance"]
    assert prov["started"] == "2020-01-02T03:04:05+00:00"
    assert len(prov["resumed"]) == 2 and all(dt.datetime.fromisoformat(t) >= before for t in prov["resumed"])
    assert prov["wall_seconds"] == round(sum(r["wall_seconds"] for r in result["runs"]), 1)


def test_runs_edited_after_training_are_not_carried_into_a_run_with_more_seeds(capsys):
    default = experiments.run(fake_experiment(), "smoke", progress=False)
    default["runs"][0]["metrics"]["score"] = -1.0
    store.write_json_atomic(default.path, default)
    more = fake_experiment()
    result = experiments.run(more, "smoke", seeds=3, progress=False)
    assert len(more.calls) == 6 and result["runs"][0]["metrics"]["score"] != -1.0
    assert f"not reusing finished runs from {default.path}: they are not those it was written with" in capsys.readouterr().err
