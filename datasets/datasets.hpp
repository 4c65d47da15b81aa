// The whole public datasets API: include this one header.
#pragma once

#include "datasets/dataset.hpp"
#include "datasets/error.hpp"
#include "datasets/idx.hpp"
#include "datasets/loader.hpp"
#include "datasets/synthetic.hpp"
