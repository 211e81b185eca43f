# The harvest control protocol: every message between the coordinator and its peers (workers,
# loaders, eval processes, status clients) is one Envelope. docs/protocol.md describes who sends
# what and when.
#
# Versioning rules (append-only):
#   - never renumber, retype or delete a field or a union member; add new ones at the end with the
#     next ordinal; a field that is no longer used stays, documented as retired;
#   - readers ignore fields they do not know; an unknown union member is answered with an
#     Error(unknownMessage) and otherwise ignored;
#   - protocolVersion changes only when the meaning of existing fields changes incompatibly; a peer
#     whose version differs is refused with Error(badVersion).
@0xfbad1bd678910548;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("harvest::proto");

const protocolVersion :UInt16 = 1;

enum Role {
  worker @0;
  loader @1;
  eval @2;
}

enum MemberState {
  registered @0;   # known, not (yet) part of a generation
  forming @1;      # assigned a rank in a generation that is rendezvousing
  running @2;      # rendezvous complete, training / loading
  aborted @3;      # told to abort its collectives, waiting for the next generation
  lost @4;         # missed heartbeats, hung past the step deadline, or left
  reattaching @5;  # replayed from the journal after a coordinator restart, not heard from yet
  left @6;         # left with its group: training finished, or a stop the ranks agreed on
  evaluating @7;   # an eval member or spare worker running an evalJob (step: the checkpoint's)
}

struct Register {
  role @0 :Role;
  host @1 :Text;
  pid @2 :UInt32;
  device @3 :Text;          # "cpu", "cuda:0", ...
  desiredRank @4 :Int32;    # -1: any
  dataEndpoint @5 :Text;    # worker: where it pulls batches (loaders push there); loader: empty
  memberId @6 :UInt64;      # 0 on first registration; the old id when re-registering
  dataCurveKey @7 :Text;    # worker with CURVE keys: the public key (Z85) its data endpoint
                            # serves CURVE with; empty: a plaintext data endpoint
}

# Reply to Register and the message that (re)places a member: its id, and its rank in a
# generation (-1 while it waits as a spare).
struct Assign {
  memberId @0 :UInt64;
  rank @1 :Int32;
  worldSize @2 :UInt32;
  generation @3 :UInt64;
  heartbeatMs @4 :UInt32;
  missLimit @5 :UInt32;
}

struct MetricsSummary {
  loss @0 :Float64;
  samplesPerSec @1 :Float64;
  stepSeconds @2 :Float64;
}

struct Heartbeat {
  memberId @0 :UInt64;
  generation @1 :UInt64;    # the generation this peer currently runs in (0: none yet)
  step @2 :UInt64;          # last completed optimizer step (workers) / batches pushed (loaders)
  state @3 :MemberState;
  metrics @4 :MetricsSummary;
}

struct HeartbeatAck {
  generation @0 :UInt64;    # the coordinator's current generation
  incarnation @1 :UInt64;   # random per coordinator process: a change means it restarted
}

# Collective backend bootstrap data. Rank 0 of a generation creates it (ncclGetUniqueId, or a
# Gloo TCP store it hosts) and offers it; the coordinator hands it to every rank.
struct BackendInfo {
  union {
    none @0 :Void;
    glooStore @1 :Text;      # "host:port" of rank 0's store
    ncclUniqueId @2 :Data;   # the 128-byte ncclUniqueId
  }
}

struct RendezvousOffer {
  memberId @0 :UInt64;
  generation @1 :UInt64;
  backend @2 :BackendInfo;
}

struct Rendezvous {
  generation @0 :UInt64;
  worldSize @1 :UInt32;
  rank @2 :Int32;
  backend @3 :BackendInfo;
  resumeStep @4 :UInt64;      # last committed checkpoint step (0: none)
  resumeCheckpoint @5 :Text;  # its path (empty: start from model.init / scratch)
}

# Abort every collective of generations below `generation` now; a new Assign/Rendezvous follows.
struct Abort {
  generation @0 :UInt64;
  reason @1 :Text;
  lostMemberId @2 :UInt64;
}

# Loader -> worker assignment. Sent to each loader and to each worker (who learns its feeders).
struct ShardPlan {
  generation @0 :UInt64;
  epoch @1 :UInt64;
  cursor @2 :UInt64;          # global sample index the data position resumes from
  loaderIndex @3 :UInt32;     # this loader's index among all loaders (workers: unused)
  loaderCount @4 :UInt32;
  workerRank @5 :Int32;       # the worker this loader feeds (workers: their own rank)
  worldSize @6 :UInt32;
  workerEndpoint @7 :Text;    # where this loader pushes (workers: their own endpoint)
  loaderMemberIds @8 :List(UInt64);  # workers: the loaders that feed them
  workerCurveKey @9 :Text;    # the worker's Register.dataCurveKey: connect with CURVE when set
}

struct StepReport {
  memberId @0 :UInt64;
  generation @1 :UInt64;
  step @2 :UInt64;
  samplesSeen @3 :UInt64;     # global data cursor after this step
  metrics @4 :MetricsSummary;
}

struct CheckpointRequest {
  generation @0 :UInt64;
  step @1 :UInt64;            # save when this step completes
  final @2 :Bool;             # a graceful shutdown follows the commit
}

# Phase one: this rank's part of the checkpoint for `step` is durable on disk.
struct CheckpointAck {
  memberId @0 :UInt64;
  generation @1 :UInt64;
  step @2 :UInt64;
  rank @3 :Int32;
  path @4 :Text;
  bytes @5 :UInt64;
  epoch @6 :UInt64;
  dataCursor @7 :UInt64;
}

# Phase two: every part is durable and the commit is in the journal; rank 0 writes the
# checkpoint's commit marker and older checkpoints may be pruned.
struct CheckpointCommit {
  generation @0 :UInt64;
  step @1 :UInt64;
  path @2 :Text;
  epoch @3 :UInt64;
  dataCursor @4 :UInt64;
}

struct EvalJob {
  jobId @0 :UInt64;
  checkpoint @1 :Text;
  tasks @2 :List(Text);
  step @3 :UInt64;            # the checkpoint's training step
}

struct Metric {
  name @0 :Text;
  value @1 :Float64;
}

struct EvalResult {
  jobId @0 :UInt64;
  memberId @1 :UInt64;
  metrics @2 :List(Metric);
  error @3 :Text;             # empty: success
}

struct Shutdown {
  reason @0 :Text;
  graceful @1 :Bool;          # true: finish the current step, then exit 0
}

struct Leave {
  memberId @0 :UInt64;
  reason @1 :Text;
  clean @2 :Bool;             # ended with its group (training finished, or an agreed stop after
                              # a committed final checkpoint): not a failure, no generation abort
}

enum ErrorKind {
  malformed @0;        # not a Cap'n Proto message, or fields fail to decode
  badVersion @1;
  tooLarge @2;
  unknownMessage @3;   # a union member this coordinator does not know, or one not accepted from peers
  unknownMember @4;    # heartbeat/report from a member id the coordinator does not know: register again
  rejected @5;         # well-formed but refused (wrong role, stale generation, ...)
  internal @6;
}

struct Error {
  kind @0 :ErrorKind;
  message @1 :Text;
}

struct StatusRequest {
  unused @0 :Void;
}

struct MemberStatus {
  memberId @0 :UInt64;
  role @1 :Role;
  rank @2 :Int32;
  host @3 :Text;
  pid @4 :UInt32;
  state @5 :MemberState;
  generation @6 :UInt64;
  step @7 :UInt64;
  lastSeenMs @8 :UInt64;      # milliseconds since its last message
  samplesPerSec @9 :Float64;
  device @10 :Text;
}

struct StatusReply {
  generation @0 :UInt64;
  worldSize @1 :UInt32;
  step @2 :UInt64;
  samplesPerSec @3 :Float64;
  lastCheckpointStep @4 :UInt64;
  lastCheckpointPath @5 :Text;
  incarnation @6 :UInt64;
  members @7 :List(MemberStatus);
  phase @8 :Text;             # waiting | forming | running | finished (train.steps committed)
  uptimeS @9 :Float64;
}

# Coordinator-internal records: actor-to-actor events and journal records. Never accepted from
# the wire (the gateway answers them with Error(unknownMessage)).
struct MemberEvent {
  memberId @0 :UInt64;
  role @1 :Role;
  host @2 :Text;
  pid @3 :UInt32;
  device @4 :Text;
  desiredRank @5 :Int32;
  dataEndpoint @6 :Text;
  routingId @7 :Data;
  reason @8 :Text;
  clean @9 :Bool;             # memberLost only: the member left cleanly (Leave.clean)
  dataCurveKey @10 :Text;
}

struct GenerationFormed {
  generation @0 :UInt64;
  worldSize @1 :UInt32;
  memberIds @2 :List(UInt64);   # index = rank
}

struct JournalWritten {
  sequence @0 :UInt64;
}

struct Envelope {
  version @0 :UInt16;
  body :union {
    register @1 :Register;
    assign @2 :Assign;
    heartbeat @3 :Heartbeat;
    heartbeatAck @4 :HeartbeatAck;
    rendezvousOffer @5 :RendezvousOffer;
    rendezvous @6 :Rendezvous;
    abort @7 :Abort;
    shardPlan @8 :ShardPlan;
    stepReport @9 :StepReport;
    checkpointRequest @10 :CheckpointRequest;
    checkpointAck @11 :CheckpointAck;
    checkpointCommit @12 :CheckpointCommit;
    evalJob @13 :EvalJob;
    evalResult @14 :EvalResult;
    shutdown @15 :Shutdown;
    leave @16 :Leave;
    error @17 :Error;
    statusRequest @18 :StatusRequest;
    statusReply @19 :StatusReply;
    # coordinator-internal (actors and journal), below
    memberJoined @20 :MemberEvent;
    memberLost @21 :MemberEvent;
    memberReattached @22 :MemberEvent;
    generationFormed @23 :GenerationFormed;
    journalWritten @24 :JournalWritten;
  }
}
