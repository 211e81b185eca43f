// Cooperative cancellation of an evaluation: a flag the caller owns, checked at batch boundaries
// (text batches, video batches, between checkpoints and tasks of a sweep). A spare worker that is
// given a rank sets it so that its device is free for training within one batch.
#pragma once

#include <atomic>
#include <stdexcept>
#include <string>

namespace harvest::eval {

// Thrown when the flag was set; nothing of the interrupted evaluation is recorded. Deliberately
// not a harvest::Error: a sweep records Errors as failed evaluations, a cancellation is not one.
class Cancelled : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline void throw_if_cancelled(const std::atomic<bool>* cancel, const std::string& where) {
  if (cancel && cancel->load()) throw Cancelled("evaluation cancelled " + where);
}

}  // namespace harvest::eval
