// Varve's testkit (library Varve::testkit): tests for applications built on
// Varve, with any test framework.
//
// - aggregate_test.hpp      given / when / then for an aggregate, pure
// - temp_store.hpp          a real store in a temporary directory
// - projection_harness.hpp  a projection over given events, synchronous
// - events.hpp              events encoded with an aggregate's codec
// - verdict.hpp             what the checks answer, and the exceptions
#pragma once

#include "varve/testkit/aggregate_test.hpp"
#include "varve/testkit/events.hpp"
#include "varve/testkit/projection_harness.hpp"
#include "varve/testkit/temp_store.hpp"
#include "varve/testkit/verdict.hpp"
