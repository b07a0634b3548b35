// tests/catalog_checks.hpp — what the two catalogs' tests share (tests/test_catalog.cpp walks
// the op catalog, tests/test_nn_layers.cpp the layer catalog).
#pragma once

#include <functional>
#include <stdexcept>
#include <string>

namespace tgtest {

/// The message of the std::invalid_argument `f` throws (an entry's bad call must throw one),
/// or why there is none.
inline std::string invalid_argument_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("(not a std::invalid_argument: ") + e.what() + ")";
    }
    return "(no exception)";
}

}  // namespace tgtest
