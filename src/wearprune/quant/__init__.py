"""int8 quantisation fused with pruning: post-training (``ptq``) and quantisation-aware (``qat``)
through torchao's pt2e flow with litert-torch's quantizer; ``ai-edge-quantizer`` as the fallback
for graphs pt2e cannot annotate. ``layer_errors`` says which layer an int8 model loses precision at.
"""

from wearprune.quant.diverge import LayerError, layer_errors, worst_layer
from wearprune.quant.pt2e import Int8Graph, ptq, qat, weight_sparsity

__all__ = ["Int8Graph", "LayerError", "layer_errors", "ptq", "qat", "weight_sparsity", "worst_layer"]
