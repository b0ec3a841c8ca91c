// The SDK version and the build signature that the core compares with every plugin it loads.
#pragma once

#include <boost/version.hpp>

#include "tern/sdk/abi.hpp"

// The SDK version. A plugin is loaded only when its major version equals the core's and its minor version
// is not newer than the core's: the core keeps every minor addition of its major version.
#define TERN_SDK_VERSION_MAJOR 0
#define TERN_SDK_VERSION_MINOR 6

// Types whose identity must be one across the plugin boundary (exceptions caught on the other side).
#define TERN_SDK_VISIBLE __attribute__((visibility("default")))

#define TERN_SDK_STR_(x) #x
#define TERN_SDK_STR(x) TERN_SDK_STR_(x)

// What must match between the core and a plugin for C++ types to be shared safely across the boundary:
// the compiler, the C++ standard library, Boost (Asio types cross the boundary), the SDK's major version and
// the hash of the SDK's headers (abi.hpp, generated at build time). Two builds whose signatures differ are
// refused even when their SDK versions agree.
#if defined(__clang__)
#define TERN_SDK_COMPILER "clang-" TERN_SDK_STR(__clang_major__) "." TERN_SDK_STR(__clang_minor__)
#elif defined(__GNUC__)
#define TERN_SDK_COMPILER "gcc-" TERN_SDK_STR(__GNUC__) "." TERN_SDK_STR(__GNUC_MINOR__)
#else
#define TERN_SDK_COMPILER "unknown-compiler"
#endif

#if defined(_GLIBCXX_RELEASE)
#define TERN_SDK_STDLIB "libstdc++-" TERN_SDK_STR(_GLIBCXX_RELEASE) "-cxx11abi" TERN_SDK_STR(_GLIBCXX_USE_CXX11_ABI)
#elif defined(_LIBCPP_VERSION)
#define TERN_SDK_STDLIB "libc++-" TERN_SDK_STR(_LIBCPP_VERSION)
#else
#define TERN_SDK_STDLIB "unknown-stdlib"
#endif

#define TERN_SDK_BUILD_SIGNATURE                                    \
  TERN_SDK_COMPILER ";" TERN_SDK_STDLIB ";boost-" BOOST_LIB_VERSION \
                    ";sdk-" TERN_SDK_STR(TERN_SDK_VERSION_MAJOR) ";abi-" TERN_SDK_ABI_HASH
