# mdm_result_ttl 0 keeps commands and results forever (contract C6), end to
# end across the API (enqueue: mdm:cmd:UUID and its targets) and the device
# side (connect.lua: the result key): no EXPIRE is set, and none with 0,
# which would delete the key at once (Redis's EXPIRE KEY 0).
#
# Blocks run in order and share Redis: the Mac enrolls in TEST 1.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
no_shuffle();
mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => q{
        mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
        mdm_result_ttl 0;
        location = /mdm { mdm_server; }
        location /v1/ { mdm_api; mdm_api_key k; }
    },
    more_headers => "Content-Type: $t::MDM::CheckinType",
);
our $MAC = '66ADE930-5FDF-5EC4-8429-15640684C489';
our $RCT = 'Content-Type: application/x-apple-aspen-mdm';
use MIME::Base64 qw(encode_base64);
our $A = 'Authorization: Basic ' . encode_base64('nanomdm:k', '');
sub auth { checkin_request("/mdm nanomdm/mdm/testdata/Authenticate.2.plist", UDID => $MAC) }
sub token { checkin_request("/mdm nanomdm/mdm/testdata/TokenUpdate.2.plist", UDID => $MAC) }
sub rep { my $b = plist_set(vector('commandment/testdata/NotNow/iOS-11.3.1.xml'), UDID => $MAC, Status => $_[0], CommandUUID => $_[1]); $b =~ s/^\s+|\s+\z//g; "PUT /mdm\n$b" }
sub cmd { qq{<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict><key>Command</key><dict><key>RequestType</key><string>ProfileList</string></dict><key>CommandUUID</key><string>$_[0]</string></dict></plist>} }
run_tests();
__DATA__

=== TEST 1: the Mac enrolls
--- redis_setup
FLUSHALL
--- request eval
[ ::auth(), ::token() ]
--- signed_by: owner
--- error_code eval
[200, 200]

=== TEST 2: mdm_result_ttl 0: a command enqueued (with an expiry) is delivered and answered; the command, its targets and the result are kept with no TTL
--- request eval
[ "PUT /v1/enqueue/$::MAC?expires=60\n" . ::cmd("Z-1"), ::rep("Idle"), ::rep("Acknowledged", "Z-1") ]
--- more_headers eval
[ $::A, $::RCT, $::RCT ]
--- signed_by: owner
--- error_code eval
[200, 200, 200]
--- redis_check eval
[ [ "TTL mdm:cmd:Z-1", "-1" ], [ "TTL mdm:cmd:Z-1:targets", "-1" ], [ "HGET mdm:r:{$::MAC}:Z-1 status", "Acknowledged" ], [ "TTL mdm:r:{$::MAC}:Z-1", "-1" ] ]
