"""Does torch.compile pay for the teacher's decoder body on this machine, at fixed shapes?

The body (what every scoring path runs) is timed on random token ids at a few batch x length
shapes: eager, compiled with static shapes (a graph per shape, what bucketing would give), or
compiled with symbolic shapes (one graph). Each mode runs in its own process, so the first call
shows that mode's compile time (less when inductor's disk cache already holds the graph).
`bench/teacher_throughput.py --compile` times the whole engine compiled.

    python bench/teacher_compile.py --mode eager|static|dynamic [--dtype bfloat16]
"""

import argparse
import time

import torch

from adapt.precision import rate_flags
from adapt.teacher.backends import TransformersBackend

SHAPES = ((8, 128), (8, 192), (8, 256))


def forward(body: torch.nn.Module, batch: int, length: int) -> None:
    ids = torch.randint(100, 20000, (batch, length))
    with torch.inference_mode():
        body(input_ids=ids, attention_mask=torch.ones_like(ids))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("eager", "static", "dynamic"), required=True)
    parser.add_argument("--teacher", default="qwen2.5-coder-0.5b")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    flags = rate_flags()
    print(f"flags {' '.join(flags)}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    body = TransformersBackend(args.teacher, dtype=args.dtype).model.base_model
    if args.mode != "eager":
        body = torch.compile(body, dynamic=args.mode == "dynamic")
    for batch, length in SHAPES:
        start = time.perf_counter()
        forward(body, batch, length)  # eager: warm-up; compiled: the compile, then one call
        first = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(args.repeats):
            forward(body, batch, length)
        each = (time.perf_counter() - start) / args.repeats
        print(
            f"{args.mode} {args.dtype} {batch}x{length}: first call {first:.1f} s, "
            f"then {each:.3f} s a forward"
        )


if __name__ == "__main__":
    main()
