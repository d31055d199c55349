// Package redistest gives tests a Redis server to talk to.
//
// Client follows one rule for every package's tests: when the environment
// variable GATEHOUSE_TEST_REDIS_URL is set (for example
// redis://127.0.0.1:6379/15) it connects there; otherwise it starts a private
// redis-server from PATH on a free loopback port, without persistence, and
// kills it when the test ends. When neither is possible the test is skipped
// with a loud message, except under CI=true, where a missing Redis fails the
// test instead.
//
// Start always runs a private server, which a test can Stop and Restart to
// prove how its code behaves while Redis is down. Prefix gives each test a
// key prefix of its own, so tests sharing one server do not clash.
//
// StartSentinel runs a master, a replica and three Sentinels, and
// StartCluster a three-master Cluster with a replica per master, all
// redis-server processes on loopback ports in the test's temporary
// directory, killed by PID when the test ends. Their KillMaster and
// KillMasterFor kill a master (SIGKILL) so that a test can watch a
// failover, and WaitFailover waits for the promotion.
package redistest
