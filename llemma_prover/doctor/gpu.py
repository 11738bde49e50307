"""Doctor checks for the GPU: torch sees it, bf16 works, and the bf16 matmul rate is plausible."""

from __future__ import annotations

import time

from .checks import Checklist, Outcome, Verdict

__all__ = ["MIN_BF16_TFLOPS", "run_gpu_checks"]

#: below this a data-centre GPU is misconfigured (a MIG slice, clocks, fp32 fallback); an H200 does ~600+
MIN_BF16_TFLOPS = 50.0


def run_gpu_checks(cl: Checklist, *, required: bool, measure: bool = True, size: int = 8192) -> None:
    """``required``: a missing GPU fails (``--engine vllm``, ``--device cuda``); else it is a warning."""

    def visible() -> Verdict:
        import torch

        if not torch.cuda.is_available():
            built = torch.version.cuda or "none (a CPU-only build of torch)"
            return Verdict(
                False,
                f"no CUDA GPU visible (torch {torch.__version__}, CUDA build {built})",
                otherwise=Outcome.FAIL if required else Outcome.WARN,
            )
        props = torch.cuda.get_device_properties(0)
        return Verdict(
            True,
            f"{torch.cuda.device_count()} GPU(s); 0: {props.name}, "
            f"{props.total_memory / 2**30:.0f} GiB, torch {torch.__version__} CUDA {torch.version.cuda}",
        )

    cl.run(
        "torch sees a GPU",
        "torch.cuda.is_available() with a CUDA build of torch",
        "install a CUDA build of torch (see pytorch.org/get-started) "
        "and check nvidia-smi; without a GPU the hf engine runs on CPU (slow)",
        visible,
    )
    if not cl.passed("torch sees a GPU"):
        return

    def bf16() -> Verdict:
        import torch

        return Verdict(
            bool(torch.cuda.is_bf16_supported()), f"is_bf16_supported={torch.cuda.is_bf16_supported()}"
        )

    cl.run(
        "bf16 supported",
        "the GPU computes in bfloat16 (the model's dtype)",
        "use --dtype float16 on GPUs older than Ampere",
        bf16,
    )
    if not measure:
        return

    def rate() -> Verdict:
        import torch

        a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
        for _ in range(3):
            a @ b
        torch.cuda.synchronize()
        n = 20
        t0 = time.perf_counter()
        for _ in range(n):
            a @ b
        torch.cuda.synchronize()
        tflops = 2 * size**3 * n / (time.perf_counter() - t0) / 1e12
        return Verdict(
            tflops >= MIN_BF16_TFLOPS, f"{tflops:.0f} TFLOP/s ({size}x{size} bf16, {n} matmuls)", tflops
        )

    cl.run(
        "bf16 matmul rate",
        f">= {MIN_BF16_TFLOPS:.0f} TFLOP/s",
        "far below a data-centre GPU: check "
        "nvidia-smi (clocks, MIG, other processes) and that torch uses the intended device",
        rate,
        needs=["bf16 supported"],
    )
