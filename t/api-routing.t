# Issue 9 #5: the API routes first and authenticates second. A path that is
# no endpoint is 404 without a challenge; a request that looks like a
# device's (an MDM content type, an MDM client's User-Agent, an
# Mdm-Signature header) is never answered 401, which would make the device
# unenroll, even when a broad location (location / { mdm_api; }) catches
# the device URLs. Only real endpoints challenge API clients with 401.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;

use MIME::Base64 qw(encode_base64);

no_shuffle();
no_root_location();   # the harness's own "location /" would clash

our $KEY = 'route-key';
our $AUTH = 'Authorization: Basic ' . encode_base64("nanomdm:$KEY", '');
our $WRONG = 'Authorization: Basic ' . encode_base64("nanomdm:nope", '');

sub body { qq{<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n}
           . qq{<key>MessageType</key><string>Authenticate</string>\n}
           . qq{<key>UDID</key><string>ROUTE-DEV</string>\n</dict>\n</plist>} }

{
    no strict 'refs';
    *{"Test::Base::Filter::body"} = \&body;
}

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => qq{
        # the whole server is the API: a misplaced device URL lands here
        location / { mdm_api; mdm_api_key $KEY; }
    },
);

run_tests();

__DATA__

=== TEST 1: a device's check-in and connect caught by "location / { mdm_api; }": 404, no challenge
--- more_headers eval
[ "Content-Type: application/x-apple-aspen-mdm-checkin",
  "Content-Type: application/x-apple-aspen-mdm",
  "Content-Type: application/x-apple-aspen-mdm-checkin\nUser-Agent: MDM/1.0" ]
--- request eval
[ "PUT /mdm/checkin\n" . body(), "PUT /mdm/connect\n" . body(), "PUT /mdm\n" . body() ]
--- error_code eval
[ 404, 404, 404 ]
--- response_headers eval
[ ("!WWW-Authenticate\nContent-Type: application/json") x 3 ]
--- json eval
[ (exact({ error => "unknown endpoint" })) x 3 ]
--- log_level: info
--- no_error_log
[error]
--- error_log eval
qr{\[info\] .*mdm: API request "/mdm(/checkin|/connect)?" answered 404: unknown endpoint}



=== TEST 2: unknown paths without credentials: 404 JSON, no challenge, no error line
--- request eval
[ "GET /", "GET /favicon.ico", "GET /v1/nothing", "GET /v1/enrollments/X/y",
  "GET /v1/queue/A/B/C", "POST /v1/webhooks/other\nx", "GET /v2/version/x" ]
--- error_code eval
[ (404) x 7 ]
--- response_headers eval
[ ("!WWW-Authenticate") x 7 ]
--- json eval
[ (exact({ error => "unknown endpoint" })) x 7 ]
--- no_error_log
[error]



=== TEST 3: a real endpoint without credentials, from an API client: still 401 with the Basic challenge
--- request eval
[ "GET /version", "GET /v1/enrollments", "PUT /v1/enqueue/X\nx", "POST /v1/enrollments/X/block",
  "POST /v1/webhooks/replay" ]
--- error_code eval
[ (401) x 5 ]
--- response_headers eval
[ ("WWW-Authenticate: Basic realm=\"ngx_mdm\"") x 5 ]
--- json eval
[ (exact({ error => "wrong or missing API credentials" })) x 5 ]



=== TEST 4: a real endpoint, a device's content type, no or wrong credentials: 403, never 401, one error line each
--- more_headers eval
[ "Content-Type: application/x-apple-aspen-mdm-checkin",
  "Content-Type: application/x-apple-aspen-mdm",
  "Content-Type: Application/X-Apple-Aspen-MDM; charset=utf-8\n$::WRONG",
  "Content-Type: application/x-apple-aspen-mdm-checkin\n$::WRONG" ]
--- request eval
[ "PUT /v1/enqueue/X\n" . body(), "PUT /version\n" . body(), "GET /v1/enrollments",
  "PUT /v1/push/X\n" . body() ]
--- error_code eval
[ 403, 403, 403, 403 ]
--- response_headers eval
[ ("!WWW-Authenticate\nContent-Type: application/json") x 4 ]
--- json eval
[ (exact({ error => "wrong or missing API credentials" })) x 4 ]
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
[ (qr/^\[error\] [^\n]*mdm: API request refused with 403, not 401: it looks like a device's[^\n]*\n\z/) x 4 ]



=== TEST 5: an MDM client's User-Agent or an Mdm-Signature header: 403, never 401
--- more_headers eval
[ "User-Agent: MDM/1.0", "User-Agent: MDM/1.0 (tvOS 17.3)",
  "User-Agent: MDM-OSX/1.0 mdmclient/1660 (macOS 13.6.3 M1)", "Mdm-Signature: MIAGCSqGSIb3DQEHAqCAMIACAQEx" ]
--- request eval
[ "GET /version", "GET /v1/enrollments/X", "PUT /v1/commands/X\n" . body(), "PUT /v1/enrollments\n" . body() ]
--- error_code eval
[ 403, 403, 403, 403 ]
--- response_headers eval
[ ("!WWW-Authenticate") x 4 ]
--- error_log
refused with 403, not 401



=== TEST 6: a browser-like or curl User-Agent is not a device: 401
--- more_headers eval
[ "User-Agent: curl/8.5.0", "User-Agent: Mozilla/5.0 (Macintosh) MDM/1.0" ]
--- request eval
[ "GET /version", "GET /version" ]
--- error_code eval
[ 401, 401 ]
--- response_headers eval
[ ("WWW-Authenticate: Basic realm=\"ngx_mdm\"") x 2 ]



=== TEST 7: with the right credentials a device-looking request is served (the API does not care what it is sent as)
--- more_headers eval
[ "Content-Type: application/x-apple-aspen-mdm\n$::AUTH", "User-Agent: MDM/1.0\n$::AUTH" ]
--- request eval
[ "GET /version", "GET /v1/enrollments/NOBODY" ]
--- error_code eval
[ 200, 404 ]
--- json eval
[ { version => "0.1.0" }, exact({ error => "unknown enrollment" }) ]



=== TEST 8: keep-alive: a 404 before authentication discards the body, the next request is understood
--- pipelined_requests eval
[ "PUT /mdm/checkin\n" . body(), "GET /version" ]
--- more_headers eval
[ "Content-Type: application/x-apple-aspen-mdm-checkin", $::AUTH ]
--- error_code eval
[ 404, 200 ]
--- json eval
[ { error => "unknown endpoint" }, { version => "0.1.0" } ]
