//! The test harness: real `redis-server` processes on free loopback ports.
