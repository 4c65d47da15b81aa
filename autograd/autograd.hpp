// The whole public autograd API: include this one header.
#pragma once

// xtensor's builders (xt::zeros, xt::ones, xt::arange, ...) make inputs; arrays print with
// ag::to_string (array.hpp), which needs no xtensor header.
#include <xtensor/xbuilder.hpp>

#include "autograd/array.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/ops.hpp"
#include "autograd/parameter.hpp"
#include "autograd/random.hpp"
#include "autograd/tape.hpp"
