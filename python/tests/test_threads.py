"""test_threads.py — two streams (each on its own model, as the header requires) driven from two
Python threads run at the same time: their frame calls overlap in wall time (ctypes releases the
GIL for the C call; with the GIL held they could overlap only by the few microseconds of Python
around each call), and each thread's outputs equal, byte for byte, what the same stream produces
run alone."""
import threading
import time

import numpy as np

import sdstream
from conftest import ref

FRAMES = 8
SIZE = 64


def frames_for(seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(FRAMES)]


def new_stream(prompt, seed):
    s = sdstream.StreamDiffusion(model=ref("models/tiny-sd15"), taesd=ref("models/taesd"),
                                 t_index_list=[32, 45], width=SIZE, height=SIZE, seed=seed, threads=1)
    s.prepare(prompt)
    return s


def run_frames(stream, frames, intervals):
    outputs = []
    for frame in frames:
        start = time.perf_counter()
        outputs.append(stream(frame))
        intervals.append((start, time.perf_counter()))
    return outputs


def overlap_seconds(a, b):
    return sum(max(0.0, min(a1, b1) - max(a0, b0)) for a0, a1 in a for b0, b1 in b)


def test_two_threads_two_streams_run_at_once():
    jobs = [("a watercolor cat", 2, frames_for(1)), ("an oil painting of a harbour", 7, frames_for(2))]
    alone = []
    for prompt, seed, frames in jobs:
        with new_stream(prompt, seed) as s:
            alone.append(run_frames(s, frames, []))
    assert not all(np.array_equal(x, y) for x, y in zip(*alone)), "the two jobs must differ"

    streams = [new_stream(prompt, seed) for prompt, seed, _ in jobs]
    intervals, results, errors = [[], []], [None, None], []
    start = threading.Barrier(2)

    def worker(i):
        try:
            start.wait()
            results[i] = run_frames(streams[i], jobs[i][2], intervals[i])
        except BaseException as e:  # reported below, a thread's exception would be lost otherwise
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in streams:
        s.close()
    assert not errors, errors

    for i in range(2):
        for k in range(FRAMES):
            assert np.array_equal(results[i][k], alone[i][k]), f"thread {i} frame {k} differs from the stream run alone"
    busy = min(sum(b - a for a, b in iv) for iv in intervals)
    shared = overlap_seconds(*intervals)
    print(f"calls overlapped {shared:.3f} s of the shorter thread's {busy:.3f} s")
    assert shared > 0.3 * busy, f"frame calls overlapped only {shared:.3f} s of {busy:.3f} s: GIL held?"

