// Placeholder until the generator lands.
#include <gtest/gtest.h>
