/* The builtin ops the runner can execute.  Unregistered kernels are dropped by
 * --gc-sections, so the list is what decides code size; it covers the ops
 * wearprune's exporters emit (conv/depthwise/FC/pool/elementwise/reshape/
 * softmax/quantize, GRU/LSTM steps) plus the usual neighbours, int8 and fp32.
 * Not registered: resource-variable ops (no MicroResourceVariables is passed),
 * signal-library ops, Ethos-U; GELU has no TFLM kernel at all. */
#ifndef WEARPRUNE_FW_OP_RESOLVER_H
#define WEARPRUNE_FW_OP_RESOLVER_H

#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

namespace wearprune {

constexpr int kMaxOps = 96;
using OpResolver = tflite::MicroMutableOpResolver<kMaxOps>;

inline TfLiteStatus RegisterOps(OpResolver& r) {
TF_LITE_ENSURE_STATUS(r.AddAbs());
  TF_LITE_ENSURE_STATUS(r.AddAdd());
  TF_LITE_ENSURE_STATUS(r.AddAddN());
  TF_LITE_ENSURE_STATUS(r.AddArgMax());
  TF_LITE_ENSURE_STATUS(r.AddArgMin());
  TF_LITE_ENSURE_STATUS(r.AddAveragePool2D());
  TF_LITE_ENSURE_STATUS(r.AddBatchMatMul());
  TF_LITE_ENSURE_STATUS(r.AddBatchToSpaceNd());
  TF_LITE_ENSURE_STATUS(r.AddBroadcastArgs());
  TF_LITE_ENSURE_STATUS(r.AddBroadcastTo());
  TF_LITE_ENSURE_STATUS(r.AddCast());
  TF_LITE_ENSURE_STATUS(r.AddCeil());
  TF_LITE_ENSURE_STATUS(r.AddConcatenation());
  TF_LITE_ENSURE_STATUS(r.AddConv2D());
  TF_LITE_ENSURE_STATUS(r.AddCos());
  TF_LITE_ENSURE_STATUS(r.AddCumSum());
  TF_LITE_ENSURE_STATUS(r.AddDepthToSpace());
  TF_LITE_ENSURE_STATUS(r.AddDepthwiseConv2D());
  TF_LITE_ENSURE_STATUS(r.AddDequantize());
  TF_LITE_ENSURE_STATUS(r.AddDiv());
  TF_LITE_ENSURE_STATUS(r.AddElu());
  TF_LITE_ENSURE_STATUS(r.AddEmbeddingLookup());
  TF_LITE_ENSURE_STATUS(r.AddEqual());
  TF_LITE_ENSURE_STATUS(r.AddExp());
  TF_LITE_ENSURE_STATUS(r.AddExpandDims());
  TF_LITE_ENSURE_STATUS(r.AddFill());
  TF_LITE_ENSURE_STATUS(r.AddFloor());
  TF_LITE_ENSURE_STATUS(r.AddFloorDiv());
  TF_LITE_ENSURE_STATUS(r.AddFloorMod());
  TF_LITE_ENSURE_STATUS(r.AddFullyConnected());
  TF_LITE_ENSURE_STATUS(r.AddGather());
  TF_LITE_ENSURE_STATUS(r.AddGatherNd());
  TF_LITE_ENSURE_STATUS(r.AddGreater());
  TF_LITE_ENSURE_STATUS(r.AddGreaterEqual());
  TF_LITE_ENSURE_STATUS(r.AddHardSwish());
  TF_LITE_ENSURE_STATUS(r.AddIf());
  TF_LITE_ENSURE_STATUS(r.AddL2Normalization());
  TF_LITE_ENSURE_STATUS(r.AddL2Pool2D());
  TF_LITE_ENSURE_STATUS(r.AddLeakyRelu());
  TF_LITE_ENSURE_STATUS(r.AddLess());
  TF_LITE_ENSURE_STATUS(r.AddLessEqual());
  TF_LITE_ENSURE_STATUS(r.AddLog());
  TF_LITE_ENSURE_STATUS(r.AddLogicalAnd());
  TF_LITE_ENSURE_STATUS(r.AddLogicalNot());
  TF_LITE_ENSURE_STATUS(r.AddLogicalOr());
  TF_LITE_ENSURE_STATUS(r.AddLogistic());
  TF_LITE_ENSURE_STATUS(r.AddLogSoftmax());
  TF_LITE_ENSURE_STATUS(r.AddMaximum());
  TF_LITE_ENSURE_STATUS(r.AddMaxPool2D());
  TF_LITE_ENSURE_STATUS(r.AddMean());
  TF_LITE_ENSURE_STATUS(r.AddMinimum());
  TF_LITE_ENSURE_STATUS(r.AddMirrorPad());
  TF_LITE_ENSURE_STATUS(r.AddMul());
  TF_LITE_ENSURE_STATUS(r.AddNeg());
  TF_LITE_ENSURE_STATUS(r.AddNotEqual());
  TF_LITE_ENSURE_STATUS(r.AddPack());
  TF_LITE_ENSURE_STATUS(r.AddPad());
  TF_LITE_ENSURE_STATUS(r.AddPadV2());
  TF_LITE_ENSURE_STATUS(r.AddPrelu());
  TF_LITE_ENSURE_STATUS(r.AddQuantize());
  TF_LITE_ENSURE_STATUS(r.AddReduceMax());
  TF_LITE_ENSURE_STATUS(r.AddReduceMin());
  TF_LITE_ENSURE_STATUS(r.AddRelu());
  TF_LITE_ENSURE_STATUS(r.AddRelu6());
  TF_LITE_ENSURE_STATUS(r.AddReshape());
  TF_LITE_ENSURE_STATUS(r.AddResizeBilinear());
  TF_LITE_ENSURE_STATUS(r.AddResizeNearestNeighbor());
  TF_LITE_ENSURE_STATUS(r.AddReverseV2());
  TF_LITE_ENSURE_STATUS(r.AddRound());
  TF_LITE_ENSURE_STATUS(r.AddRsqrt());
  TF_LITE_ENSURE_STATUS(r.AddSelectV2());
  TF_LITE_ENSURE_STATUS(r.AddShape());
  TF_LITE_ENSURE_STATUS(r.AddSin());
  TF_LITE_ENSURE_STATUS(r.AddSlice());
  TF_LITE_ENSURE_STATUS(r.AddSoftmax());
  TF_LITE_ENSURE_STATUS(r.AddSpaceToBatchNd());
  TF_LITE_ENSURE_STATUS(r.AddSpaceToDepth());
  TF_LITE_ENSURE_STATUS(r.AddSplit());
  TF_LITE_ENSURE_STATUS(r.AddSplitV());
  TF_LITE_ENSURE_STATUS(r.AddSqrt());
  TF_LITE_ENSURE_STATUS(r.AddSquare());
  TF_LITE_ENSURE_STATUS(r.AddSquaredDifference());
  TF_LITE_ENSURE_STATUS(r.AddSqueeze());
  TF_LITE_ENSURE_STATUS(r.AddStridedSlice());
  TF_LITE_ENSURE_STATUS(r.AddSub());
  TF_LITE_ENSURE_STATUS(r.AddSum());
  TF_LITE_ENSURE_STATUS(r.AddSvdf());
  TF_LITE_ENSURE_STATUS(r.AddTanh());
  TF_LITE_ENSURE_STATUS(r.AddTranspose());
  TF_LITE_ENSURE_STATUS(r.AddTransposeConv());
  TF_LITE_ENSURE_STATUS(r.AddUnidirectionalSequenceLSTM());
  TF_LITE_ENSURE_STATUS(r.AddUnpack());
  TF_LITE_ENSURE_STATUS(r.AddWhile());
  TF_LITE_ENSURE_STATUS(r.AddZerosLike());
  return kTfLiteOk;
}

}  // namespace wearprune

#endif  // WEARPRUNE_FW_OP_RESOLVER_H
