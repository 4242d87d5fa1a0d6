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
  HaproxyLoadBalancer::AddStats("rel-rolling", kStat, s);
  EXPECT_EQ(s[0].sessions, 3);
  EXPECT_EQ(s[1].sessions, 7);
  EXPECT_EQ(s[2].sessions, 0);
}

// Captured from HAProxy 2.6.12 with servers added by AddServerCommand: "a" fails its HTTP check
// (404), "b" refuses connections; both are down (op state 0) while their admin state is ready.
constexpr char kCheckedState[] =
    "1\n"
    "3 web 1 a 127.0.0.1 0 0 1 1 300 17 2 0 6 0 0 0 - 18090 - 0 0 - - 0\n"
    "3 web 2 b 127.0.0.1 0 0 1 1 299 8 2 0 6 0 0 0 - 18091 - 0 0 - - 0\n"
    "3 web 4 c 127.0.0.1 2 0 1 1 16 6 3 3 6 0 0 0 - 18092 - 0 0 - - 0\n";
constexpr char kCheckedStat[] =
    "web,a,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1,1,0,1,1,300,300,,1,3,1,,0,,2,0,,0,L7STS,404,2,0,0,0,"
    "0,0,0,0,,,0,0,0,,,,,-1,File not found,,0,0,0,0,,,,Layer7 wrong status,,1,2,0,,,,\n"
    "web,b,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1,1,0,1,1,299,299,,1,3,2,,0,,2,0,,0,L4CON,,0,0,0,0,0,"
    "0,0,,,,0,0,0,,,,,-1,Connection refused,,0,0,0,0,,,,Layer4 connection problem,,1,2,0,,,,\n"
    "web,c,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,16,0,,1,3,4,,0,,2,0,,0,L4OK,,0,0,0,0,0,0,0,,,,"
    "0,0,0,,,,,-1,,,0,0,0,0,,,,Layer4 check passed,,2,2,3,,,,\n";

TEST(HaproxyParseTest, TheBalancersOwnCheckVerdictIsRead) {
  std::vector<LbServer> s = HaproxyLoadBalancer::ParseServersState("web", kCheckedState);
  HaproxyLoadBalancer::AddStats("web", kCheckedStat, s);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_FALSE(s[0].up);
  EXPECT_EQ(s[0].state, LbServer::State::kReady) << "down by check, not by hostd";
  EXPECT_EQ(s[0].check_status, "L7STS");
  EXPECT_FALSE(s[1].up);
  EXPECT_EQ(s[1].check_status, "L4CON");
  EXPECT_TRUE(s[2].up);
  EXPECT_EQ(s[2].check_status, "L4OK");
  EXPECT_TRUE(s[2].check.enabled);
  // The earlier capture had no checks: every server up, no check status.
  std::vector<LbServer> plain = HaproxyLoadBalancer::ParseServersState("rel-rolling", kServersState);
  HaproxyLoadBalancer::AddStats("rel-rolling", kStat, plain);
  EXPECT_TRUE(plain[1].up);
  EXPECT_FALSE(plain[1].check.enabled);
}

TEST(HaproxyCommandTest, AServerWithACheckGetsItsKeywords) {
  LbServer s;
  s.name = "r3-abc";
  s.address = "10.0.1.7";
  s.port = 8080;
  s.weight = 128;
  EXPECT_EQ(HaproxyLoadBalancer::AddServerCommand("web", s),
            "add server web/r3-abc 10.0.1.7:8080 weight 128");
  s.check = {.enabled = true, .port = 9000, .interval = absl::Seconds(5), .fall = 2, .rise = 1};
  EXPECT_EQ(HaproxyLoadBalancer::AddServerCommand("web", s),
            "add server web/r3-abc 10.0.1.7:8080 weight 128 check inter 5000ms fall 2 rise 1 "
            "observe layer4 error-limit 2 on-error mark-down port 9000");
}

// "show table holds" as HAProxy 2.6 prints it (later versions add shard=).
TEST(HaproxyParseTest, HeldRequestsComeFromTheHoldsTable) {
  const std::string table =
      "# table: holds, type: string, size:1024, used:2\n"
      "0x55d0c8a2f0e8: key=web use=2 exp=598123 gpc0=7\n"
      "0x55d0c8a2f1a0: key=api use=0 exp=12000 shard=0 gpc0=1\n";
  std::map<std::string, HeldRequests> held = HaproxyLoadBalancer::ParseHolds(table);
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held["web"].waiting, 2);
  EXPECT_EQ(held["web"].total, 7);
  EXPECT_EQ(held["api"].waiting, 0);
  EXPECT_EQ(held["api"].total, 1);
  EXPECT_TRUE(HaproxyLoadBalancer::ParseHolds("# table: holds, type: string\n").empty());
}

TEST(HaproxyParseTest, AnotherBackendOrGarbageGivesNothing) {
  EXPECT_TRUE(HaproxyLoadBalancer::ParseServersState("nope", kServersState).empty());
  EXPECT_TRUE(HaproxyLoadBalancer::ParseServersState("rel-rolling", "garbage\n\n1\n").empty());
}

}  // namespace
}  // namespace hosting::controlplane
