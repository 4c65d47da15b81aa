// The whole public models API: include this one header.
#pragma once

#include "models/vae.hpp"
