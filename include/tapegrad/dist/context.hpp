// tapegrad/dist/context.hpp — the MPI job a program runs in, and the collectives tapegrad uses.
//
//     int main(int argc, char** argv) {
//         tg::dist::Context ctx(argc, argv);    // MPI_Init; MPI_Finalize when it goes
//         ... ctx.rank() of ctx.world_size() ...
//     }
//
// Started as `mpirun -np 4 ./program`, the program runs 4 times (4 ranks); the collectives
// below are called by every rank in the same order and combine their arrays. Every MPI error
// becomes a std::runtime_error naming the MPI call and the rank. A rank that dies of an
// uncaught exception (std::terminate) or calls abort() takes the whole job down with
// MPI_Abort, printing its rank, so the other ranks never wait for it forever.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <mpi.h>

#include "tapegrad/config.hpp"

namespace tg::dist {

/// The MPI job (MPI_COMM_WORLD). One per process: the constructor initialises MPI, the
/// destructor finalises it. Not copyable.
class Context {
  public:
    /// MPI_Init(argc, argv); throws std::logic_error if MPI was already initialised.
    Context(int& argc, char**& argv);
    /// MPI_Finalize. If the stack is unwinding from an exception, aborts the job instead
    /// (the other ranks may be waiting in a collective this rank will never join).
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    /// This process's number, 0 .. world_size() − 1.
    int rank() const { return rank_; }
    /// The number of processes in the job (mpirun's -np).
    int world_size() const { return size_; }
    /// "rank 2 of 4", for messages.
    std::string where() const;

    /// data[i] = Σ_ranks data[i], in place, on every rank (MPI_Allreduce, MPI_SUM).
    void all_reduce_sum(double* data, std::size_t count) const;
    void all_reduce_sum(float* data, std::size_t count) const;
    /// a = Σ_ranks a, in place; every rank's a must have the same size.
    void all_reduce_sum(Array& a) const;
    /// a = 1/P Σ_ranks a, in place.
    void all_reduce_mean(Array& a) const;
    /// data = root's data, on every rank (MPI_Bcast).
    void broadcast(double* data, std::size_t count, int root = 0) const;
    void broadcast(float* data, std::size_t count, int root = 0) const;
    void broadcast(Array& a, int root = 0) const;
    /// Every rank's `mine` (all of the same size), concatenated in rank order (MPI_Allgather).
    std::vector<double> all_gather(const std::vector<double>& mine) const;
    std::vector<std::uint64_t> all_gather(std::uint64_t mine) const;
    /// Agreement before a collective, so that a refused call never leaves a rank waiting:
    /// every rank passes its own verdict on its arguments (`error`, empty when they are fine)
    /// and a `token` that must be equal on every rank (a count, a layout). If any rank has an
    /// error or the tokens differ, every rank throws the same std::invalid_argument, naming
    /// `op` and each failing rank with its reason. One MPI_Allgather (two when one failed).
    /// Every collective of tg::dist calls it first.
    /// `token_name` says what the token counts ("channels") in that message.
    void agree(const std::string& op, const std::string& error, std::uint64_t token = 0,
               const std::string& token_name = "values") const;
    /// Waits until every rank has called it (MPI_Barrier).
    void barrier() const;

    /// Prints "tg::dist: rank R of P: <message>; aborting the job" to stderr and ends every
    /// rank (MPI_Abort with `code`). For a catch block in main.
    [[noreturn]] void abort(const std::string& message, int code = 1) const;

    /// The MPI communicator (MPI_COMM_WORLD), for code that calls MPI itself.
    MPI_Comm comm() const { return MPI_COMM_WORLD; }

  private:
    int rank_ = 0, size_ = 1;
};

/// Throws std::runtime_error("tg::dist: <call> failed on rank R: <MPI's error string>") unless
/// rc is MPI_SUCCESS.
void check_mpi(int rc, const char* call);

}  // namespace tg::dist
