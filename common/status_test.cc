#define BOOST_TEST_MODULE common
#include "common/status.h"

#include <boost/test/unit_test.hpp>

#include "common/result.h"

namespace vnvram {
namespace {

BOOST_AUTO_TEST_SUITE(StatusTest)

BOOST_AUTO_TEST_CASE(DefaultIsOkAndCarriesNothing) {
  Status s;
  BOOST_TEST(s.ok());
  BOOST_TEST(s.ToString() == "OK");
  BOOST_TEST(s.message().empty());
  BOOST_TEST(s.sys_errno() == 0);
}

BOOST_AUTO_TEST_CASE(ErrorKeepsCodeAndMessage) {
  Status s = Status::InvalidArgument("ring-ref 'x': not a decimal number");
  BOOST_TEST(!s.ok());
  BOOST_TEST((s.code() == Code::kInvalidArgument));
  BOOST_TEST(s.ToString() == "invalid argument: ring-ref 'x': not a decimal number");
}

BOOST_AUTO_TEST_CASE(FromErrnoMapsEagainToAborted) {
  Status s = Status::FromErrno(EAGAIN, "xs_transaction_end");
  BOOST_TEST((s.code() == Code::kAborted));
  BOOST_TEST(s.sys_errno() == EAGAIN);
  BOOST_TEST(s.message().find("xs_transaction_end") == 0u);
}

BOOST_AUTO_TEST_CASE(FromErrnoMapsCommonErrors) {
  BOOST_TEST((Status::FromErrno(ENOENT, "x").code() == Code::kNotFound));
  BOOST_TEST((Status::FromErrno(EACCES, "x").code() == Code::kPermissionDenied));
  BOOST_TEST((Status::FromErrno(ENOSPC, "x").code() == Code::kResourceExhausted));
  BOOST_TEST((Status::FromErrno(E2BIG, "x").code() == Code::kResourceExhausted));
  BOOST_TEST((Status::FromErrno(EIO, "x").code() == Code::kIoError));
}

BOOST_AUTO_TEST_CASE(WithContextPrefixesAndKeepsErrno) {
  Status s = Status::FromErrno(ENOENT, "open f").WithContext("vault dom 3");
  BOOST_TEST((s.code() == Code::kNotFound));
  BOOST_TEST(s.sys_errno() == ENOENT);
  BOOST_TEST(s.message().rfind("vault dom 3: open f", 0) == 0u);
  BOOST_TEST(Status::Ok().WithContext("x").ok());
}

Result<int> Half(int v) {
  if (v % 2 != 0) return Status::InvalidArgument("odd");
  return v / 2;
}

Result<int> Quarter(int v) {
  VNVRAM_ASSIGN_OR_RETURN(int h, Half(v));
  VNVRAM_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

BOOST_AUTO_TEST_CASE(ResultPropagatesFirstError) {
  BOOST_TEST(*Quarter(8) == 2);
  auto r = Quarter(6);
  BOOST_TEST(!r.ok());
  BOOST_TEST(r.status().message() == "odd");
  BOOST_TEST(Quarter(6).value_or(-1) == -1);
}

Status FailsAtSecond(int* calls) {
  auto step = [calls](bool ok) {
    ++*calls;
    return ok ? Status::Ok() : Status::Unavailable("gone");
  };
  VNVRAM_RETURN_IF_ERROR(step(true));
  VNVRAM_RETURN_IF_ERROR(step(false));
  VNVRAM_RETURN_IF_ERROR(step(true));
  return Status::Ok();
}

BOOST_AUTO_TEST_CASE(ReturnIfErrorStopsAtFirstFailure) {
  int calls = 0;
  Status s = FailsAtSecond(&calls);
  BOOST_TEST((s.code() == Code::kUnavailable));
  BOOST_TEST(calls == 2);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace vnvram
