#include "controlplane/traffic/load_balancer.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hosting::controlplane {
namespace {

// Answers captured from HAProxy 2.6 (the project's image) mid-release: a revision-1 task
// draining (admin state 8, set by the router with "set server state drain"), a revision-2 task
// ready, one in maintenance, and a server of another backend.
constexpr char kServersState[] =
    "1\n"
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health "
    "srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord "
    "srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"
    "4 rel-rolling 1 r1-64nrj6s79vrg 10.0.1.106 2 8 256 256 30 1 0 0 0 0 0 0 - 3000 - 0 0 - - 0\n"
    "4 rel-rolling 5 r2-0d79cxqc4bw1 10.0.1.108 2 0 256 256 35 1 0 0 0 0 0 0 - 3000 - 0 0 - - 0\n"
    "4 rel-rolling 6 r2-ex0ue9n2p8sf 10.0.1.109 2 1 0 256 31 1 0 0 0 0 0 0 - 3000 - 0 0 - - 0\n"
    "5 other 1 r1-aaaaaaaaaaaa 10.0.1.5 2 0 256 256 3 1 0 0 0 0 0 0 - 3000 - 0 0 - - 0\n";

constexpr char kStat[] =
    "# pxname,svname,qcur,qmax,scur,smax\n"
    "rel-rolling,r1-64nrj6s79vrg,0,0,3,4\n"
    "rel-rolling,r2-0d79cxqc4bw1,0,0,7,3\n"
    "rel-rolling,BACKEND,0,0,10,8\n";

TEST(HaproxyParseTest, ServersStateGivesEachServerOfTheBackend) {
  std::vector<LbServer> s = HaproxyLoadBalancer::ParseServersState("rel-rolling", kServersState);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].name, "r1-64nrj6s79vrg");
  EXPECT_EQ(s[0].address, "10.0.1.106");
  EXPECT_EQ(s[0].port, 3000);
  EXPECT_EQ(s[0].weight, 256);
  // Admin state 8 is SRV_ADMF_FDRAIN: read as maintenance before this test existed.
  EXPECT_EQ(s[0].state, LbServer::State::kDrain);
  EXPECT_EQ(s[1].state, LbServer::State::kReady);
  EXPECT_EQ(s[2].state, LbServer::State::kMaint);  // admin state 1: forced maintenance
  EXPECT_EQ(s[2].weight, 0);
}

TEST(HaproxyParseTest, SessionsComeFromTheStatCsv) {
  std::vector<LbServer> s = HaproxyLoadBalancer::ParseServersState("rel-rolling", kServersState);
  HaproxyLoadBalancer::AddSessions("rel-rolling", kStat, s);
  EXPECT_EQ(s[0].sessions, 3);
  EXPECT_EQ(s[1].sessions, 7);
  EXPECT_EQ(s[2].sessions, 0);
}

TEST(HaproxyParseTest, AnotherBackendOrGarbageGivesNothing) {
  EXPECT_TRUE(HaproxyLoadBalancer::ParseServersState("nope", kServersState).empty());
  EXPECT_TRUE(HaproxyLoadBalancer::ParseServersState("rel-rolling", "garbage\n\n1\n").empty());
}

}  // namespace
}  // namespace hosting::controlplane
