# The loader -> worker data plane. One batch is one ZeroMQ multipart message:
#   [BatchHeader (Cap'n Proto)] [one raw frame per tensor in `tensors`, in order]
# Frames are raw little-endian bytes (uint8 clips [B,T,H,W,3], int32 token ids [B,L], ...),
# described by the header so the worker can wrap them without copying. Same versioning rules as
# protocol.capnp.
@0xba1d50d21e5144fa;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("harvest::proto");

const batchVersion :UInt16 = 1;

enum DType {
  uint8 @0;
  int32 @1;
  int64 @2;
  float32 @3;
  bfloat16 @4;
}

struct TensorDesc {
  name @0 :Text;              # "frames", "tokens", ...
  dtype @1 :DType;
  shape @2 :List(UInt64);
}

struct BadSample {
  sampleId @0 :UInt64;
  reason @1 :Text;
  offset @2 :UInt32;          # position in the batch's span of the shard (0 .. span-1)
}

struct BatchHeader {
  version @0 :UInt16;
  generation @1 :UInt64;      # shard plan generation this batch belongs to
  globalIndex @2 :UInt64;     # batch number in the run (the worker checks it for gaps/duplicates)
  epoch @3 :UInt64;
  cursor @4 :UInt64;          # global sample index of the first sample
  loaderIndex @5 :UInt32;
  sampleIds @6 :List(UInt64); # manifest rows, one per clip in the batch
  tensors @7 :List(TensorDesc);
  badSamples @8 :List(BadSample);  # skipped by rule while filling this batch (counted and logged)
  badSampleCount @9 :UInt32;
}

# Loader <-> worker flow control on the same connection: single-frame messages (a batch is always
# two or more frames). The loader says hello once connected; the worker answers with credit
# (batches the loader may send beyond those already sent) and returns one credit per batch it has
# consumed, so at most data.queue_depth batches of a loader are ever queued or in flight.
#
# Coordinator-placed loaders (data.loader_placement = coordinator) learn only which worker to feed
# from the coordinator's ShardPlan; their hello carries their member id, and the worker answers
# with `start`: what to build from which data position, under an incarnation number the worker
# chose. A later `start` replaces the assignment (the worker re-deals when its loaders change);
# batches of older incarnations are dropped.
struct LoaderControl {
  version @0 :UInt16;
  generation @1 :UInt64;      # the loader incarnation this is for (command line, or `start`)
  loaderIndex @2 :UInt32;
  body :union {
    hello @3 :Void;           # loader -> worker
    credit @4 :UInt32;        # worker -> loader
    start @6 :LoaderStart;    # worker -> coordinator-placed loader
  }
  memberId @5 :UInt64;        # hello of a coordinator-placed loader: its member id (else 0)
}

struct LoaderStart {
  rank @0 :Int32;             # the worker's rank and group size (whose shard to read)
  worldSize @1 :UInt32;
  count @2 :UInt32;           # loaders feeding this worker; this one is loaderIndex of them
  firstBatch @3 :UInt64;      # global index of its first batch (then + count each)
  epoch @4 :UInt64;           # sampler position of that batch's first sample
  cursor @5 :UInt64;
}
