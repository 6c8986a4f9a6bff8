"""`alexnet benchmark`: training and inference speed and memory against plain references."""

from __future__ import annotations

import argparse
import json

from alexnet_lab.cli.flags import ALL_FRAMEWORKS, DEVICE_HELP, framework_names
from alexnet_lab.frameworks.registry import DEFAULT_FRAMEWORK, ENTRIES, NAMES


def add_benchmark(sub) -> None:
    p = sub.add_parser("benchmark", help="training/inference throughput, latency and memory vs plain references")
    p.add_argument("--frameworks", "--framework", nargs="+", default=None,
                   help=f"{framework_names('and/or', default=None)} (default {ALL_FRAMEWORKS}; with --data one of "
                   f"them, default {DEFAULT_FRAMEWORK})")
    p.add_argument("--batch-size", type=int, default=None, help="default 64 (32 with --data)")
    p.add_argument("--size", type=int, default=224, help="input size (default 224)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per measurement and round (default 10)")
    p.add_argument("--repeats", type=int, default=3, help="rounds of ours then the reference, each in fresh processes; "
                   "medians are reported (default 3)")
    p.add_argument("--no-jpeg", action="store_true", help="skip the JPEG input-pipeline measurement")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--data", metavar="FOLDER", help="a class folder of photos: the training input of --framework "
                   "on them (loader alone, end-to-end step) beside the plain recipe "
                   "a user of that framework writes (named in the JSON's reference_recipe), instead of the model "
                   "measurements")
    p.add_argument("--num-workers", type=int, default=0, help="--data, PyTorch: loader workers on both sides "
                   "(default: what `alexnet train` picks)")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads of the measuring process "
                   "(default: the framework's own choice)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_benchmark)


def cmd_benchmark(args: argparse.Namespace) -> int:
    from alexnet_lab.bench.runner import run_benchmark
    from alexnet_lab.bench.settings import BenchSettings
    from alexnet_lab.frameworks import check_framework, get_backend

    if args.frameworks is None:
        args.frameworks = [DEFAULT_FRAMEWORK] if args.data else list(NAMES)
    for framework in args.frameworks:
        check_framework(framework)
    if args.data and len(args.frameworks) != 1:
        from alexnet_lab.core.errors import UserInputError

        raise UserInputError(f"--data measures one framework at a time; received --frameworks "
                             f"{' '.join(args.frameworks)}. Pass {' or '.join(f'--framework {n}' for n in NAMES)}.")
    for framework in args.frameworks:  # a missing device fails here, before any worker starts
        if ENTRIES[framework].early_device_check:
            get_backend(framework).resolve_device(args.device)
    batch = args.batch_size if args.batch_size is not None else (32 if args.data else 64)  # 0 is refused below
    for flag, value in (("--repeats", args.repeats), ("--steps", args.steps), ("--batch-size", batch)):
        if value < 1:
            from alexnet_lab.core.errors import UserInputError

            raise UserInputError(f"{flag} must be at least 1; received {value}.")
    from alexnet_lab.core.spec import get_arch

    settings = BenchSettings(size=args.size, batch=batch, train_steps=args.steps, infer_steps=args.steps,
                             repeats=args.repeats, device=args.device, workers=args.num_workers, threads=args.threads)
    get_arch(settings.variant).feature_map_size(settings.size)  # a too-small --size fails here, in one line
    if args.data:
        return _data_benchmark(settings, args)
    doc = run_benchmark(settings, tuple(args.frameworks), jpeg=not args.no_jpeg)
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    for framework in args.frameworks:
        r, spread = doc[framework], doc[framework]["spread"]
        ours, ref = r["ours"], r["reference"]
        print(f"{framework}: train {r['train_img_s']:.1f} img/s in {ours['train_precision']} (reference "
              f"{r['reference_train_img_s']:.1f} in fp32, x{r['train_speedup']:.2f}, rounds "
              f"x{spread['train_speedup'][0]:.2f}-{spread['train_speedup'][1]:.2f}) | inference "
              f"{r['infer_img_s']:.1f} img/s in {ours['infer_precision']} (reference {r['reference_infer_img_s']:.1f}, "
              f"x{r['infer_speedup']:.2f}) | batch-1 {r['latency_ms']:.1f} ms (reference "
              f"{r['reference_latency_ms']:.1f}) | peak {r['peak_rss_mb']:.0f} MB (reference "
              f"{r['reference_peak_rss_mb']:.0f}) | layout {ours['layout']} vs {ref['layout']}")
        for kind in ("bf16", "int8"):
            if f"{kind}_infer_img_s" in r:
                print(f"{framework} {kind} inference (--precision {kind}): {r[f'{kind}_infer_img_s']:.1f} img/s "
                      f"(x{r[f'{kind}_infer_speedup']:.2f} the reference) | batch-1 {r[f'{kind}_latency_ms']:.1f} ms")
    if "input_pipeline" in doc:
        print(f"JPEG input pipeline: {doc['input_pipeline']['jpeg_pipeline_img_s']:.0f} img/s")
    return 0


def _data_benchmark(settings, args: argparse.Namespace) -> int:
    """`--data FOLDER`: bench.data_bench's figures, ours beside the torchvision recipe."""
    from alexnet_lab.bench.runner import run_data_benchmark
    from alexnet_lab.data import read_class_folder

    read_class_folder(args.data)  # a missing or empty folder fails here, in one line
    doc = run_data_benchmark(settings, args.data, args.frameworks[0])
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    spread = doc["spread"]
    print(f"{doc['framework']}: ours beside {doc['reference_recipe']}")
    for side in ("ours", "reference"):
        r = doc[side]
        workers = f"{r['workers']} worker(s)" if isinstance(r["workers"], int) else r["workers"]
        print(f"{side}: train {r['train_img_s']:.1f} img/s end to end | loader alone {r['loader_img_s']:.1f} img/s "
              f"({workers}) | step alone {r['step_img_s']:.1f} img/s | fed x{r['fed']:.2f} | "
              f"decode + augment {r['view_img_s_per_core']:.0f} img/s per core")
    print(f"ours / reference: train x{doc['train_img_s_ratio']:.2f} (rounds x{spread['train_img_s_ratio'][0]:.2f}-"
          f"{spread['train_img_s_ratio'][1]:.2f}) | loader x{doc['loader_img_s_ratio']:.2f} | decode + augment "
          f"x{doc['view_img_s_per_core_ratio']:.2f}")
    return 0
