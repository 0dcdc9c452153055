# DDM notifications through mdm-worker: a change that alters an
# enrollment's DeclarationsToken queues ONE DeclarativeManagement command
# per enrollment per burst of changes (coalesced), with the SyncTokens in
# Data, and pushes; changes that alter nothing tell no one; a set shared by
# many enrollments is fanned out in bounded steps while nginx keeps
# answering (measured). Blocks build on each other: one Redis.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMWorker;
use JSON::PP ();
use MIME::Base64 qw(encode_base64 decode_base64);
use Time::HiRes qw(time sleep);

no_shuffle();

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => q{
        mdm_identity_ca $TEST_NGINX_PKI/identity-ca.pem;
        location = /mdm/checkin { mdm_checkin; }
        location = /mdm/connect { mdm_connect; }
        location /v1/ { mdm_api; mdm_api_key secret; }
        location = /t { return 204; }
    },
);

our $MAC = '66ADE930-5FDF-5EC4-8429-15640684C489';
our $JSON = JSON::PP->new->canonical;
our $API = [ Authorization => 'Basic ' . encode_base64('nanomdm:secret', '') ];
our $CT = $t::MDM::CheckinType;
our $W;
# the fan-out: how many enrollments share the set (MDM_DDM_FANOUT_N)
our $N = $ENV{MDM_DDM_FANOUT_N} || 10000;
our $SETTLE = 300;

sub http {
    my ($method, $path, $body, $headers) = @_;
    my $r = concurrent_requests(Test::Nginx::Socket::server_port(),
        [ http_request($method, $path, $body, $headers) ], timeout => 20)->[0];
    die "$method $path: $r->{error}" if $r->{error} && !$r->{status};
    return $r;
}

sub api {
    my ($method, $path, $body) = @_;
    $body = $JSON->encode($body) if ref $body;
    return http($method, $path, $body, $API);
}

sub plist {
    my (%kv) = @_;
    my $x = qq{<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n};
    $x .= "\t<key>$_</key>\n\t<string>$kv{$_}</string>\n" for sort keys %kv;
    return $x . "</dict>\n</plist>\n";
}

sub device {
    my ($path, $ct, $body) = @_;
    return http('PUT', $path, $body, [ 'Content-Type' => $ct,
        'Mdm-Signature' => mdm_signature($body, 'mac') ]);
}

sub enroll {
    device('/mdm/checkin', $CT,
           plist_set(vector('nanomdm/mdm/testdata/Authenticate.2.plist'), UDID => $MAC));
    device('/mdm/checkin', $CT,
           plist_set(vector('nanomdm/mdm/testdata/TokenUpdate.2.plist'), UDID => $MAC));
}

sub next_command {
    device('/mdm/connect', 'application/x-apple-aspen-mdm',
           plist(UDID => $MAC, Status => 'Idle'))->{body};
}

sub ack {
    device('/mdm/connect', 'application/x-apple-aspen-mdm',
           plist(UDID => $MAC, Status => 'Acknowledged', CommandUUID => $_[0]));
}

sub command_data {
    my ($xml) = @_;
    my ($type) = $xml =~ m{<key>RequestType</key>\s*<string>([^<]*)</string>};
    my ($uuid) = $xml =~ m{<key>CommandUUID</key>\s*<string>([^<]*)</string>};
    my ($data) = $xml =~ m{<key>Data</key>\s*<data>([^<]*)</data>};
    return ($type // '', $uuid // '',
            defined $data ? $JSON->decode(decode_base64($data)) : undef);
}

sub token { $JSON->decode(api('GET', "/v1/ddm/tokens/$_[0]")->{body})->{SyncTokens}{DeclarationsToken} }

sub decl {
    my ($id, $n) = @_;
    return { Type => 'com.apple.configuration.management.test', Identifier => $id,
             Payload => { Echo => "v$n" } };
}

# the DeclarativeManagement commands queued for the Mac
sub queued {
    my @u = @{ redis('LRANGE', "mdm:q:{$MAC}", 0, -1) };
    return grep { (redis('HGET', "mdm:cmd:$_", 'request_type') // '') eq 'DeclarativeManagement' } @u;
}

# waits until the worker has nothing ready left and has settled
sub quiet {
    wait_for(sub { redis('ZCARD', 'mdm:ddm:dirty') == 0 }, 60, 'the fan-out is done');
}

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"} for qw(api);
}

run_tests();

__DATA__

=== TEST 1: setup: the Mac enrolled and synced; the worker runs
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    Test::More::is(::api('PUT', '/v1/ddm/declarations', ::decl("d$_", 0))->{status}, 204) for 1 .. 3;
    ::api('PUT', '/v1/ddm/set-declarations/s1?declaration=d1');
    ::api('PUT', '/v1/ddm/set-declarations/other?declaration=d3');
    ::api('PUT', "/v1/ddm/enrollment-sets/$::MAC?set=s1");
    ::enroll();
    my ($type, $uuid) = ::command_data(::next_command());
    Test::More::is($type, 'DeclarativeManagement', 'enrolled: told');
    ::ack($uuid);
    redis('DEL', 'mdm:ddm:dirty');
    # MDM_DDM_VALGRIND=1: the worker under valgrind (use a small MDM_DDM_FANOUT_N)
    $::W = start_worker(apns_url => 'https://127.0.0.1:9', ddm_interval => 50,
                        ddm_settle_ms => $::SETTLE, ddm_budget => 200,
                        repush_interval => 0,
                        ($ENV{MDM_DDM_VALGRIND} ? (valgrind => 1) : ()));
}



=== TEST 2: a burst of changes (an edit, two set changes) makes ONE command, with the final tokens, pushed
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    my $pushed = redis('HGET', "mdm:enr:{$::MAC}", 'push_at') // '';
    ::api('PUT', '/v1/ddm/declarations', ::decl('d1', 1));
    ::api('PUT', '/v1/ddm/set-declarations/s1?declaration=d2');
    ::api('PUT', '/v1/ddm/declarations', ::decl('d2', 1));
    ::api('PUT', "/v1/ddm/enrollment-sets/$::MAC?set=other");
    Test::More::is(scalar(::queued()), 0, 'nothing before the burst settles');
    wait_for(sub { scalar(::queued()) > 0 }, 20, 'a command');
    ::quiet();
    Time::HiRes::sleep(0.3);
    my @q = ::queued();
    Test::More::is(scalar @q, 1, 'one DeclarativeManagement command');
    my ($type, $uuid, $data) = ::command_data(::next_command());
    Test::More::is($data->{SyncTokens}{DeclarationsToken}, ::token($::MAC), 'with the final tokens');
    ::ack($uuid);
    Test::More::is(::next_command(), '', 'and no other');
    Test::More::ok(wait_for(sub { (redis('HGET', "mdm:enr:{$::MAC}", 'push_at') // '') ne $pushed },
                            20, 'a push'), 'and a push (C1), which the worker took');
}



=== TEST 3: changes that leave the token as it is tell no one: another set's declaration, an edit and its revert
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    ::api('PUT', '/v1/ddm/declarations', ::decl('d4', 0));
    ::api('PUT', '/v1/ddm/set-declarations/unused?declaration=d4');
    ::api('PUT', '/v1/ddm/declarations', ::decl('d1', 2));
    ::api('PUT', '/v1/ddm/declarations', ::decl('d1', 1));
    Time::HiRes::sleep($::SETTLE / 1000 + 0.2);
    ::quiet();
    Test::More::is(scalar(::queued()), 0, 'no command');
}



=== TEST 4: a change while the last command still waits: the queue keeps one, with the new tokens
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    ::api('PUT', '/v1/ddm/declarations', ::decl('d1', 3));
    wait_for(sub { scalar(::queued()) > 0 }, 20, 'a command');
    my ($first) = ::queued();
    ::api('PUT', '/v1/ddm/declarations', ::decl('d2', 3));
    wait_for(sub { my ($u) = ::queued(); $u && $u ne $first }, 20, 'the command replaced');
    ::quiet();
    Test::More::is(scalar(::queued()), 1, 'one command queued');
    my ($type, $uuid, $data) = ::command_data(::next_command());
    Test::More::is($data->{SyncTokens}{DeclarationsToken}, ::token($::MAC), 'the newest tokens');
    Test::More::is(redis('SISMEMBER', "mdm:cmd:$first:targets", $::MAC), 0,
                   'the replaced command no longer names the Mac');
    ::ack($uuid);
}



=== TEST 5: removing the enrollment from a set tells it
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    ::api('DELETE', "/v1/ddm/enrollment-sets/$::MAC?set=other");
    wait_for(sub { scalar(::queued()) > 0 }, 20, 'a command');
    my ($type, $uuid, $data) = ::command_data(::next_command());
    Test::More::is($data->{SyncTokens}{DeclarationsToken}, ::token($::MAC), 'the new token');
    ::ack($uuid);
}



=== TEST 6: a set shared by many enrollments: fanned out in bounded steps, nginx answering meanwhile (measured)
--- request
GET /t
--- error_code: 204
--- timeout: 300
--- after_each eval
sub {
    # $N enrolled devices written straight to Redis, all in set "big"
    for (my $i = 1; $i <= $::N; $i += 5000) {
        redis('EVAL', q{
            for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
                local id = string.format('F-%06d', i)
                redis.call('HSET', 'mdm:enr:{' .. id .. '}', 'type', 'Device',
                    'enabled', '1', 'topic', 'com.apple.mgmt.External.x',
                    'token', string.format('%064x', i), 'push_magic', 'm')
                redis.call('SADD', 'mdm:ddm:enrsets:{' .. id .. '}', 'big')
                redis.call('SADD', 'mdm:ddm:setenrs:big', id)
            end
        }, 0, $i, ($i + 4999 > $::N ? $::N : $i + 4999));
    }
    ::api('PUT', '/v1/ddm/declarations', ::decl('dbig', 0));
    redis('CONFIG', 'SET', 'slowlog-log-slower-than', 2000);
    redis('SLOWLOG', 'RESET');
    redis('CONFIG', 'SET', 'slowlog-max-len', 100000);
    my $t0 = Time::HiRes::time();
    Test::More::is(::api('PUT', '/v1/ddm/set-declarations/big?declaration=dbig')->{status}, 204,
                   'one API call');
    my $api_ms = (Time::HiRes::time() - $t0) * 1000;
    my ($max, $n) = (0, 0);
    my $last = sprintf 'F-%06d', $::N;
    my $start = Time::HiRes::time();
    while (Time::HiRes::time() - $start < 240) {
        my $s = Time::HiRes::time();
        my $r = ::api('GET', "/v1/ddm/tokens/$::MAC");
        my $d = (Time::HiRes::time() - $s) * 1000;
        $max = $d if $d > $max;
        $n++;
        last if redis('ZCARD', 'mdm:ddm:dirty') == 0
                && redis('HEXISTS', "mdm:enr:{$last}", 'ddm_cmd');
        Time::HiRes::sleep(0.02);
    }
    my $took = Time::HiRes::time() - $start - $::SETTLE / 1000;
    my $told = redis('EVAL', q{
        local n = 0
        for i = 1, tonumber(ARGV[1]) do
            if redis.call('HEXISTS', string.format('mdm:enr:{F-%06d}', i), 'ddm_cmd') == 1 then n = n + 1 end
        end
        return n }, 0, $::N);
    Test::More::is($told, $::N, "every one of the $::N enrollments has its command");
    my $queued = redis('LLEN', 'mdm:q:{F-000001}');
    Test::More::is($queued, 1, 'one command each');
    # the longest fan-out step Redis ran (SLOWLOG: microseconds)
    my $step = 0;
    for my $e (@{ redis('SLOWLOG', 'GET', 100000) }) {
        my $cmd = CORE::join(' ', @{ $e->[3] });
        $step = $e->[2] if $cmd =~ /^EVALSHA/ && $e->[2] > $step && $cmd =~ / 0 \d{13} $::SETTLE /;
    }
    my $records = scalar @{ redis('KEYS', 'mdm:cmd:*:targets') };
    redis('CONFIG', 'SET', 'slowlog-log-slower-than', 10000);
    Test::More::diag(sprintf "ddm fan-out of %d enrollments: API call %.1f ms; all told in %.2f s "
        . "after settling; longest step %.1f ms; %d API requests meanwhile, slowest %.1f ms; "
        . "%d command records",
        $::N, $api_ms, $took, $step / 1000, $n, $max, $records);
    Test::More::ok($step / 1000 < 1000, 'no step holds Redis for a second');
    Test::More::ok($max < 1000, 'nginx kept answering');
}



=== TEST 7: the worker stops cleanly
--- request
GET /t
--- error_code: 204
--- after_each eval
sub {
    Test::More::is(stop_worker($::W), 0, 'exit 0');
    valgrind_clean($::W, 'ddm fan-out') if $ENV{MDM_DDM_VALGRIND};
    Test::More::like(worker_log($::W), qr/ddm: \d+ enrollments looked at, \d+ told to sync/,
                     'the fan-out is logged');
}
