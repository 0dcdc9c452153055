# /v1/dep/proxy/NAME/<Apple path> (issue 11, contract D4): the module
# queues the call as a job (RPUSH mdm:dep:proxy, 503 when 1,000 wait) and
# polls for the worker's reply (GETDEL mdm:dep:proxy:reply:ID) on a timer
# until mdm_dep_proxy_timeout (504). Apple's status, body and content type
# come back as they are; a worker error (status 0) is a 502.
#
# The worker's half of D4 is played here by a forked loop that takes jobs
# with BLPOP and SETs replies, so this file tests the module's half of the
# contract on its own; t/dep-api-e2e.t runs the real mdm-worker against the
# mock DEP server.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMApi;

use JSON::PP ();
use POSIX ();
use Time::HiRes ();

no_shuffle();

our $KEY = 'proxy-key';
our $TOK = '{"consumer_key":"CK_1","consumer_secret":"CS_1","access_token":"AT_1",'
         . '"access_secret":"AS_1","access_token_expiry":"2030-01-01T00:00:00Z"}';
our $JOBS = pki_dir() . '/dep-proxy-jobs';
our @KIDS;
# fake_worker(), jobs(), reap() of t/MDMApi.pm take jobs from here
our $JOBQ = 'mdm:dep:proxy';
our $REPLY = 'mdm:dep:proxy:reply:';

sub seed {
    redis('FLUSHALL');
    redis('SADD', 'mdm:dep:names', 'acme', 'empty');
    redis('SET', 'mdm:dep:acme:tokens', $::TOK);
}

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"} for qw(fake_worker jobs reap seed);
}

api_defaults($KEY);
mdm_defaults(config => "location /v1/ { mdm_api; mdm_api_key $KEY; mdm_dep_proxy_timeout 1s; }");

run_tests();

__DATA__

=== TEST 1: a GET with a query: the job carries the name, method, path + query, an empty body, a deadline; Apple's answer comes back as it is
--- redis_setup eval
sub {
    seed();
    $::T0 = int(Time::HiRes::time() * 1000);
    fake_worker(reply => sub { { status => 200, body => '{"server_name":"ngx_mdm test"}',
                                 content_type => 'application/json;charset=UTF8' } });
}
--- request
GET /v1/dep/proxy/acme/account?x=1&y=%2F
--- error_code: 200
--- response_headers
Content-Type: application/json;charset=UTF8
--- response_body: {"server_name":"ngx_mdm test"}
--- after_each eval
sub {
    reap();
    my $j = jobs();
    Test::More::is(scalar @$j, 1, "one job");
    my $job = $j->[0];
    Test::More::like($job->{id}, qr/^[0-9a-f]{32}$/, "id: 32 hex");
    Test::More::is_deeply([ map { $job->{$_} } qw(name method path body) ],
                          [ 'acme', 'GET', '/account?x=1&y=%2F', '' ], "name, method, path, body");
    Test::More::cmp_ok($job->{deadline}, '>=', $::T0 + 1000, "deadline: now + 1 s");
    Test::More::cmp_ok($job->{deadline}, '<=', $::T0 + 3000, "deadline: not later");
    Test::More::is(redis('EXISTS', "mdm:dep:proxy:reply:$job->{id}"), 0, "the reply was taken (GETDEL)");
}
--- no_error_log
[error]



=== TEST 2: a POST with a JSON body reaches the worker byte for byte; a later reply (several polls) still comes back
--- redis_setup eval
sub { seed(); fake_worker(delay => 0.4, reply => sub { { status => 200, body => $_[0]{body}, content_type => 'application/json' } }) }
--- request
POST /v1/dep/proxy/acme/profile/devices
{"profile_uuid":"P1","devices":["C02A","C02B"],"note":"é"}
--- error_code: 200
--- response_body: {"profile_uuid":"P1","devices":["C02A","C02B"],"note":"é"}
--- after_each eval
sub { reap(); Test::More::is(jobs()->[0]{method}, 'POST', "POST"); Test::More::is(jobs()->[0]{path}, '/profile/devices', "path") }



=== TEST 3: DELETE with a body (Apple's remove profile) and Apple's error status and text body pass through, with one info line
--- redis_setup eval
sub { seed(); fake_worker(reply => sub { { status => 400, body => 'EXHAUSTED_CURSOR', content_type => 'text/plain' } }) }
--- request
DELETE /v1/dep/proxy/acme/profile/devices
{"devices":["C02A"]}
--- error_code: 400
--- response_headers
Content-Type: text/plain
--- response_body: EXHAUSTED_CURSOR
--- after_each eval
sub { reap(); Test::More::is(jobs()->[0]{body}, '{"devices":["C02A"]}', "DELETE's body") }
--- log_level: info
--- error_log
Apple answered 400: EXHAUSTED_CURSOR



=== TEST 4: the worker could not reach Apple (status 0): 502 with its error, one error line
--- redis_setup eval
sub { seed(); fake_worker(reply => sub { { status => 0, body => '', error => 'connect to mdmenrollment.apple.com: Connection refused' } }) }
--- request
GET /v1/dep/proxy/acme/account
--- error_code: 502
--- json eval
exact({ error => "the DEP call failed: connect to mdmenrollment.apple.com: Connection refused" })
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/\A\[error\] [^\n]*DEP proxy call "GET \/account" of DEP name "acme" failed: connect to mdmenrollment.apple.com: Connection refused[^\n]*\n\z/
--- after_each eval
sub { reap() }



=== TEST 5: no worker: 504 after mdm_dep_proxy_timeout (1 s), one error line; the job stays for a worker to drop
--- redis_setup eval
sub { seed(); $::T0 = Time::HiRes::time() }
--- request
GET /v1/dep/proxy/acme/account
--- error_code: 504
--- json eval
exact({ error => "the worker did not answer the DEP call in time (mdm_dep_proxy_timeout)" })
--- after_each eval
sub {
    my $took = Time::HiRes::time() - $::T0;
    Test::More::cmp_ok($took, '>=', 0.95, "waited the timeout ($took s)");
    Test::More::cmp_ok($took, '<', 2.5, "not much longer");
}
--- grep_error_log eval
qr/\[error\].*/
--- grep_error_log_out eval
qr/\A\[error\] [^\n]*DEP proxy call "GET \/account" of DEP name "acme" got no answer in 1000 ms \(mdm_dep_proxy_timeout\): is mdm-worker running\?[^\n]*\n\z/
--- redis_check eval
[ [ "LLEN mdm:dep:proxy", "1" ] ]



=== TEST 6: while a call waits, the same nginx worker serves other requests (the wait is a timer, not a block)
--- redis_setup eval
sub { seed(); fake_worker(delay => 0.7, reply => sub { { status => 200, body => 'late', content_type => 'text/plain' } }) }
--- request
GET /v1/dep/dep_names
--- error_code: 200
--- after_each eval
sub {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => main::server_port()) or die;
    print {$s} "GET /v1/dep/proxy/acme/account HTTP/1.1\r\nHost: x\r\nConnection: close\r\n$::AUTH\r\n\r\n";
    Time::HiRes::sleep(0.2);
    my $t0 = Time::HiRes::time();
    my $r = api('GET', '/v1/dep/status/acme');
    my $took = Time::HiRes::time() - $t0;
    Test::More::is($r->{status}, 200, "another request is answered meanwhile");
    Test::More::cmp_ok($took, '<', 0.5, "at once ($took s)");
    local $/;
    my $resp = <$s>;
    Test::More::like($resp, qr/\AHTTP\/1\.1 200 .*\r\n\r\nlate\z/s, "then the waiting call gets its reply");
    reap();
}
--- timeout: 5



=== TEST 7: 20 calls at once, answered in reverse order: each gets its own reply
--- redis_setup eval
sub {
    seed();
    # collect the 20 jobs, then answer them last first
    my $pid = fork // die;
    if ($pid == 0) {
        local $t::MDM::RedisTimeout = 15;
        my @jobs;
        while (@jobs < 20) {
            my $r = redis('BLPOP', 'mdm:dep:proxy', 10) or last;
            push @jobs, JSON::PP->new->decode($r->[1]);
        }
        for my $job (CORE::reverse @jobs) {
            redis('SET', "mdm:dep:proxy:reply:$job->{id}",
                  JSON::PP->new->encode({ status => 200, body => $job->{path}, content_type => 'text/plain' }), 'EX', 120);
        }
        POSIX::_exit(0);
    }
    push @::KIDS, $pid;
}
--- request
GET /v1/dep/dep_names
--- error_code: 200
--- after_each eval
sub {
    my @r = @{ concurrent_requests(main::server_port(),
        [ map { http_request('GET', "/v1/dep/proxy/acme/devices/n$_", undef, [ split /:\s*/, $::AUTH, 2 ]) } 1 .. 20 ],
        timeout => 10) };
    my $ok = 0;
    for my $i (1 .. 20) {
        $ok++ if $r[$i - 1]{status} == 200 && $r[$i - 1]{body} eq "/devices/n$i";
    }
    Test::More::is($ok, 20, "20 answers, each its own");
    reap();
}



=== TEST 8: the queue holds at most 1,000 calls: 503, nothing added; an unknown name 404; a name without tokens 409
--- redis_setup eval
sub { seed(); redis('RPUSH', 'mdm:dep:proxy', ('{}') x 1000) }
--- request eval
[ "GET /v1/dep/proxy/acme/account", "GET /v1/dep/proxy/nope/account", "GET /v1/dep/proxy/empty/account" ]
--- error_code eval
[ 503, 404, 409 ]
--- json eval
[ exact({ error => "the DEP proxy queue is full (1000 calls wait for the worker)" }),
  exact({ error => "unknown DEP name nope" }),
  exact({ error => "DEP name empty has no tokens yet" }) ]
--- redis_check eval
[ [ "LLEN mdm:dep:proxy", "1000" ] ]



=== TEST 9: paths and methods that are not: 400 or 405, one info line each, nothing queued
--- redis_setup eval
sub { seed() }
--- request eval
[ "GET /v1/dep/proxy/acme", "GET /v1/dep/proxy/acme/", "GET /v1/dep/proxy/acme/profile%3Fx",
  "GET /v1/dep/proxy/acme/a%20b", "GET /v1/dep/proxy/acme/x%7Cy", "GET /v1/dep/proxy/acme/" . ("a" x 1100),
  "PATCH /v1/dep/proxy/acme/account\n{}", "HEAD /v1/dep/proxy/acme/account",
  "GET /v1/dep/proxy/bad!name/account" ]
--- error_code eval
[ 400, 400, 400, 400, 400, 400, 405, 405, 400 ]
--- json eval
[ (exact({ error => qr/^the DEP proxy takes \/v1\/dep\/proxy\/NAME and an Apple path/ })) x 6,
  exact({ error => "the DEP proxy takes GET, POST, PUT or DELETE" }), undef,
  exact({ error => qr/^a DEP name is/ }) ]
--- log_level: info
--- grep_error_log eval
qr/\[(?:info|warn|error)\] [^\n]*(?:mdm|DEP)[^\n]*/
--- grep_error_log_out eval
qr/\A\[info\] [^\n]*answered 40[05]: [^\n]*\n\z/
--- redis_check eval
[ [ "LLEN mdm:dep:proxy", "0" ] ]



=== TEST 10: a body over 1 MB: 413; a body that is not UTF-8: 400; nothing queued
--- redis_setup eval
sub { seed() }
--- request eval
[ "POST /v1/dep/proxy/acme/devices\n" . ("x" x (1024 * 1024 + 1)), "POST /v1/dep/proxy/acme/devices\n\xff\xfe{}" ]
--- error_code eval
[ 413, 400 ]
--- json eval
[ exact({ error => "the body is too large for a DEP call (1 MB at most)" }), exact({ error => "the body is not UTF-8 text" }) ]
--- redis_check eval
[ [ "LLEN mdm:dep:proxy", "0" ] ]



=== TEST 11: a reply that is not the contract's: 502, logged
--- redis_setup eval
sub { seed(); fake_worker(reply => sub { 'not json' }) }
--- request
GET /v1/dep/proxy/acme/account
--- error_code: 502
--- json eval
exact({ error => "the worker's reply is invalid" })
--- error_log
the worker's reply is not {"status", "body", ...}: not json
--- after_each eval
sub { reap() }



=== TEST 12: a client that goes away while its call waits: no crash, the next call works
--- redis_setup eval
sub { seed(); fake_worker(n => 2, delay => 0.3, reply => sub { { status => 200, body => 'ok', content_type => 'text/plain' } }) }
--- request
GET /v1/dep/dep_names
--- error_code: 200
--- after_each eval
sub {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => main::server_port()) or die;
    print {$s} "GET /v1/dep/proxy/acme/account HTTP/1.1\r\nHost: x\r\n$::AUTH\r\n\r\n";
    Time::HiRes::sleep(0.1);
    close $s;
    Time::HiRes::sleep(0.5);
    my $r = api('GET', '/v1/dep/proxy/acme/account');
    Test::More::is($r->{status}, 200, "the next call is answered");
    Test::More::is($r->{body}, 'ok', "with its reply");
    reap();
}
--- no_error_log
[alert]
[crit]



=== TEST 13: mdm_dep_proxy_timeout out of range refuses the configuration
--- config
location /v1/ { mdm_api; mdm_api_key k; mdm_dep_proxy_timeout 50ms; }
--- must_die
--- error_log
mdm_dep_proxy_timeout is 100ms to 5m



=== TEST 14: Redis goes away while a call waits: 503 at the next poll, not at the deadline
--- config
location /v1/ { mdm_api; mdm_api_key proxy-key; mdm_dep_proxy_timeout 10s; }
--- redis_setup eval
sub { seed() }
--- request
GET /v1/dep/dep_names
--- error_code: 200
--- after_each eval
sub {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => main::server_port()) or die;
    print {$s} "GET /v1/dep/proxy/acme/account HTTP/1.1\r\nHost: x\r\nConnection: close\r\n$::AUTH\r\n\r\n";
    Time::HiRes::sleep(0.3);
    my $t0 = Time::HiRes::time();
    redis_stop();
    local $/;
    my $resp = <$s>;
    my $took = Time::HiRes::time() - $t0;
    Test::More::like($resp, qr/\AHTTP\/1\.1 503 .*"error":"redis /s, "answered 503");
    Test::More::cmp_ok($took, '<', 3, "soon ($took s), not after the 10 s timeout");
    redis_start();
}



=== TEST 15: a reply after 3 s (slower polls after 2 s) still comes back, well before the timeout
--- config
location /v1/ { mdm_api; mdm_api_key proxy-key; mdm_dep_proxy_timeout 10s; }
--- redis_setup eval
sub { seed(); $::T0 = Time::HiRes::time(); fake_worker(delay => 3, reply => sub { { status => 201, body => '{"ok":true}' } }) }
--- request
GET /v1/dep/proxy/acme/account
--- error_code: 201
--- response_headers
Content-Type: application/json
--- response_body: {"ok":true}
--- after_each eval
sub { my $took = Time::HiRes::time() - $::T0; Test::More::cmp_ok($took, '<', 4, "answered $took s after"); reap() }
--- timeout: 12
