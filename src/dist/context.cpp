#include "tapegrad/dist/context.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace tg::dist {

namespace {

// The rank and size of this process's job, for the terminate handler (which has no Context).
int g_rank = -1, g_size = 0;
std::terminate_handler g_previous_terminate = nullptr;

[[noreturn]] void abort_job(const std::string& message, int code) {
    std::fprintf(stderr, "tg::dist: rank %d of %d: %s; aborting the job (MPI_Abort)\n", g_rank,
                 g_size, message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::abort();  // MPI_Abort does not return; this keeps [[noreturn]] honest
}

// An exception escaped (or std::terminate was called) on this rank: the others may be blocked
// in a collective this rank will never reach, so end the whole job, saying which rank died.
[[noreturn]] void on_terminate() {
    std::string what = "std::terminate called";
    if (const std::exception_ptr e = std::current_exception()) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            what = std::string("uncaught exception: ") + ex.what();
        } catch (...) {
            what = "uncaught exception of unknown type";
        }
    }
    abort_job(what, 1);
}

// Empty when `count` fits MPI's int count, else why not.
std::string count_error(std::size_t count) {
    if (count <= static_cast<std::size_t>(std::numeric_limits<int>::max())) return {};
    return std::to_string(count) + " values in one call, more than MPI's int count allows";
}

}  // namespace

void check_mpi(int rc, const char* call) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    throw std::runtime_error(std::string("tg::dist: ") + call + " failed on rank " +
                             std::to_string(g_rank) + ": " + std::string(text, len));
}

Context::Context(int& argc, char**& argv) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (initialised) {
        throw std::logic_error(
            "tg::dist::Context: MPI is already initialised (one Context per "
            "process)");
    }
    // Before MPI_Init an error handler cannot be set yet: MPI_Init's failure aborts by default.
    MPI_Init(&argc, &argv);
    // Errors come back as return codes (check_mpi turns them into exceptions) instead of
    // killing the job without a word about where.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    g_rank = rank_;
    g_size = size_;
    g_previous_terminate = std::set_terminate(on_terminate);
}

Context::~Context() {
    if (std::uncaught_exceptions() > 0) abort_job("exception escaping the Context's scope", 1);
    std::set_terminate(g_previous_terminate);
    MPI_Finalize();
}

std::string Context::where() const {
    return "rank " + std::to_string(rank_) + " of " + std::to_string(size_);
}

void Context::agree(const std::string& op, const std::string& error, std::uint64_t token,
                    const std::string& token_name) const {
    // Round 1: every rank's (failed?, token).
    const std::uint64_t mine[2] = {error.empty() ? 0u : 1u, token};
    std::vector<std::uint64_t> all(2 * static_cast<std::size_t>(size_));
    check_mpi(MPI_Allgather(mine, 2, MPI_UINT64_T, all.data(), 2, MPI_UINT64_T, comm()),
              "MPI_Allgather");
    bool failed = false, differ = false;
    for (int r = 0; r < size_; ++r) {
        failed = failed || all[2 * r] != 0;
        differ = differ || all[2 * r + 1] != all[1];
    }
    if (!failed && !differ) return;
    std::string message = "tg::dist: " + op + ": refused on every rank:";
    if (failed) {
        // Round 2 (every rank knows one failed, so every rank takes part): the reasons.
        const int len = static_cast<int>(std::min<std::size_t>(error.size(), 4096));
        std::vector<int> lens(static_cast<std::size_t>(size_)), offsets(lens.size());
        check_mpi(MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, comm()),
                  "MPI_Allgather");
        int total = 0;
        for (std::size_t r = 0; r < lens.size(); ++r) {
            offsets[r] = total;
            total += lens[r];
        }
        std::string text(static_cast<std::size_t>(total), '\0');
        check_mpi(MPI_Allgatherv(error.data(), len, MPI_CHAR, text.data(), lens.data(),
                                 offsets.data(), MPI_CHAR, comm()),
                  "MPI_Allgatherv");
        for (std::size_t r = 0; r < lens.size(); ++r) {
            if (all[2 * r] == 0) continue;
            message += " rank " + std::to_string(r) + ": " +
                       text.substr(static_cast<std::size_t>(offsets[r]),
                                   static_cast<std::size_t>(lens[r])) +
                       ";";
        }
    }
    if (differ) {
        message += " the ranks' " + token_name + " differ (";
        for (int r = 0; r < size_; ++r)
            message += (r ? ", " : "") + std::string("rank ") + std::to_string(r) + " has " +
                       std::to_string(all[2 * r + 1]);
        message += "; expected the same on every rank);";
    }
    message.pop_back();
    throw std::invalid_argument(message);
}

void Context::all_reduce_sum(double* data, std::size_t count) const {
    agree("all_reduce_sum", count_error(count), count);
    check_mpi(
        MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_DOUBLE, MPI_SUM, comm()),
        "MPI_Allreduce");
}

void Context::all_reduce_sum(float* data, std::size_t count) const {
    agree("all_reduce_sum", count_error(count), count);
    check_mpi(
        MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_FLOAT, MPI_SUM, comm()),
        "MPI_Allreduce");
}

void Context::all_reduce_sum(Array& a) const {
    all_reduce_sum(a.data(), a.size());
}

void Context::all_reduce_mean(Array& a) const {
    all_reduce_sum(a);
    a /= static_cast<real>(size_);
}

namespace {
std::string broadcast_error(std::size_t count, int root, int size) {
    if (root < 0 || root >= size)
        return "root " + std::to_string(root) + ", expected 0 .. " + std::to_string(size - 1);
    return count_error(count);
}
}  // namespace

void Context::broadcast(double* data, std::size_t count, int root) const {
    agree("broadcast", broadcast_error(count, root, size_), count);
    check_mpi(MPI_Bcast(data, static_cast<int>(count), MPI_DOUBLE, root, comm()), "MPI_Bcast");
}

void Context::broadcast(float* data, std::size_t count, int root) const {
    agree("broadcast", broadcast_error(count, root, size_), count);
    check_mpi(MPI_Bcast(data, static_cast<int>(count), MPI_FLOAT, root, comm()), "MPI_Bcast");
}

void Context::broadcast(Array& a, int root) const {
    broadcast(a.data(), a.size(), root);
}

std::vector<double> Context::all_gather(const std::vector<double>& mine) const {
    std::string error = count_error(mine.size());
    if (error.empty() &&
        mine.size() > std::numeric_limits<std::size_t>::max() / static_cast<std::size_t>(size_))
        error = std::to_string(mine.size()) + " values per rank overflow the result's size";
    agree("all_gather", error, mine.size());
    std::vector<double> all(mine.size() * static_cast<std::size_t>(size_));
    const int n = static_cast<int>(mine.size());
    check_mpi(MPI_Allgather(mine.data(), n, MPI_DOUBLE, all.data(), n, MPI_DOUBLE, comm()),
              "MPI_Allgather");
    return all;
}

std::vector<std::uint64_t> Context::all_gather(std::uint64_t mine) const {
    // One value from every rank: nothing a rank could disagree on.
    std::vector<std::uint64_t> all(static_cast<std::size_t>(size_));
    check_mpi(MPI_Allgather(&mine, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, comm()),
              "MPI_Allgather");
    return all;
}

void Context::barrier() const {
    check_mpi(MPI_Barrier(comm()), "MPI_Barrier");
}

void Context::abort(const std::string& message, int code) const {
    abort_job(message, code);
}

}  // namespace tg::dist
