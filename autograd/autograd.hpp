// The whole public autograd API: include this one header.
#pragma once

#include "autograd/array.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/ops.hpp"
#include "autograd/parameter.hpp"
#include "autograd/random.hpp"
#include "autograd/tape.hpp"
