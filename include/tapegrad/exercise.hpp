// tapegrad/exercise.hpp — what an unfinished exercise throws (exercises/, docs/exercises.md).
//
// Every file in exercises/ starts with a body that throws tg::exercise_not_done("NAME"): the
// grader reports the exercise as "not done" with the command to start, and a chapter program
// built with the student's kernels (cmake --preset exercises) stops with the same message
// instead of silently running the reference kernel.
#pragma once

#include <stdexcept>
#include <string>

namespace tg {

/// Thrown by an exercise whose body the student has not written yet.
class exercise_not_done : public std::logic_error {
  public:
    explicit exercise_not_done(const std::string& name)
        : std::logic_error(
              "exercise " + name + " is not done yet: write its body in exercises/" + name +
              ".cpp, then run `bash scripts/exercise.sh check " + name +
              "` (docs/exercises.md). To run the reference kernel in its place instead, build "
              "with `bash scripts/exercise.sh build --use-reference-for " +
              name + "`"),
          name_(name) {}
    /// The exercise's name, e.g. "batch_norm_backward".
    const std::string& name() const { return name_; }

  private:
    std::string name_;
};

}  // namespace tg
