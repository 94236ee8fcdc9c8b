"""In-window decode attention for one layer of SmolLM2 shape (9 query heads, 3 kv heads, 2048 cached tokens):
SDPA with enable_gqa vs expanding the kv heads first. Prints the max difference and the time per call."""
import torch, time
from longdoc.longheads.backends import causal_attention, expand_kv
import torch.nn.functional as F
torch.set_num_threads(2)
q=torch.randn(1,9,1,64); k=torch.randn(1,3,2048,64); v=torch.randn(1,3,2048,64)
ref=F.scaled_dot_product_attention(q,expand_kv(k,9),expand_kv(v,9),scale=0.125)
print("max diff", (causal_attention(q,k,v,0.125)-ref).abs().max().item())
def t(f,n=200):
    f(); t0=time.perf_counter()
    for _ in range(n): f()
    return (time.perf_counter()-t0)/n*1e6
print("decode step in window, one layer: enable_gqa %.0f us vs expand %.0f us" % (t(lambda: causal_attention(q,k,v,0.125)), t(lambda: F.scaled_dot_product_attention(q,expand_kv(k,9),expand_kv(v,9),scale=0.125))))
