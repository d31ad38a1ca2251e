"""What a backend's errors say: memory that ran out, an op's refusal as one line."""

from __future__ import annotations

import re

# What each library says when an allocation fails: TensorFlow's ResourceExhaustedError ("OOM when
# allocating tensor"), XLA's RESOURCE_EXHAUSTED (JAX), torch's OutOfMemoryError ("CUDA out of
# memory") and CPU allocator ("can't allocate memory"), NumPy's MemoryError.
OUT_OF_MEMORY = re.compile(r"RESOURCE_EXHAUSTED|OOM when allocating|out of memory|"
                           r"can't allocate memory", re.IGNORECASE)


def out_of_memory(exc: BaseException) -> str | None:
    """The allocator's own words, shortened, when `exc` says memory ran out (host or device, any
    backend); None for any other error."""
    text = str(exc)
    if not (isinstance(exc, MemoryError)
            or type(exc).__name__ in ("ResourceExhaustedError", "OutOfMemoryError")
            or OUT_OF_MEMORY.search(text)):
        return None
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text).split(" [Op:")[0]  # TensorFlow's op names
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = next((line for line in lines if OUT_OF_MEMORY.search(line)),
                lines[0] if lines else type(exc).__name__)
    if "DefaultCPUAllocator" in line:  # torch's CPU allocator, after its source location
        line = line[line.index("DefaultCPUAllocator"):]
    # torch's CUDA message goes on with the device's whole account: keep what was asked for.
    cuda = re.match(r"CUDA out of memory\. Tried to allocate \S+ \S+?\.", line)
    return (cuda[0] if cuda else line)[:300]



def op_message(exc: BaseException) -> str:
    """An op's error as one line, without TensorFlow's graph-function and op names."""
    import re

    lines = str(exc).strip().splitlines()
    text = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:\w+\].*", "", lines[0]) if lines else ""
    return text or type(exc).__name__
