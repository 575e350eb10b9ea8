"""Test-wide settings.

The tests run tiny tensors, for which one intra-op thread is fastest; two threads that busy-wait
beside other work on a 2-core machine made single calls up to 300x slower.
"""

import torch

torch.set_num_threads(1)
