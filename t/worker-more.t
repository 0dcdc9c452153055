# mdm-worker, more: the re-push schedule and its backoff, webhook dead
# letters, 403 BadCertificate, TLS failures, a 400 for every token, several
# workers on one Redis, SIGTERM in the middle of a burst, several topics at
# once, Redis down when the worker starts; one pending push per enrollment,
# recovery from dead workers and reconnects, escaping of device strings,
# a half-open Redis connection, host names, the Redis version check.

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMServers;
use t::MDMWorker;
use MIME::Base64 qw(encode_base64);
use JSON::PP qw(decode_json);
use Time::HiRes qw(time sleep);
use IO::Socket::INET;
use IO::Select;
use POSIX qw(WNOHANG);

no_shuffle();

our $KEY = 'sekret';
our $AUTH = "Authorization: Basic " . encode_base64("nanomdm:$KEY", '');
our $CERT = make_push_cert();                         # topic A
our $TOPIC = $CERT->{topic};
our $CERT_B = make_push_cert(uuid => 'topic-b-0001');  # topic B, also trusted
our $TOPIC_B = $CERT_B->{topic};
our $ROGUE = make_push_cert(untrusted => 1);          # not trusted by APNs
our $TOPIC_R = $ROGUE->{topic};
our $GOOD_R = make_push_cert(topic => $TOPIC_R, uuid => 'good-0001');
our $APNS = start_apns(max_streams => 1000);
our $UDID = "66ADE930-5FDF-5EC4-8429-15640684C489";   # the "mac" vectors'
our (@WS, $W, $HOOK, %S);

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => qq{
        large_client_header_buffers 4 64k;
        location /v1/ { mdm_api; mdm_api_key $KEY; }
        location = /mdm/checkin {
            mdm_checkin;
            mdm_identity_ca \$TEST_NGINX_PKI/identity-ca.pem;
        }
    },
    more_headers => $AUTH,
);

# --- scenario eval: a block whose test is all Perl (workers, Redis, APNs);
# GET /v1/webhooks (200) only carries it. It starts with no worker running
# and the APNs stand-in's log cleared.
add_block_preprocessor(sub {
    my ($block) = @_;
    my $code = $block->can('scenario') && $block->scenario or return;
    $block->set_value(request => "GET /v1/webhooks");
    $block->set_value(error_code => 200);
    $block->set_value(after_each => [ sub { stop_all(); apns_clear($APNS); $code->(@_) } ]);
});

sub worker (%) {
    my $w = start_worker(apns_url => $APNS->{url}, apns_ca => $APNS->{server_ca},
                         push_backoff_ms => 100, repush_interval => 0,
                         worker_id => 'w1', @_);
    push @WS, $w;
    return $w;
}

# SIGTERM to every worker still running: their exit statuses (a list, or
# joined with commas in scalar context)
sub stop_all () {
    my @st = map { stop_worker($_) } @WS;
    @WS = ();
    return wantarray ? @st : join(",", map { $_ // "killed" } @st);
}

sub token ($) { sprintf "%064x", $_[0] }
sub id ($) { sprintf "M-%05d", $_[0] }
sub ids ($$) { join ',', map { id($_) } $_[0] .. $_[1] }
sub now_ms () { int(time * 1000) }

# Time::HiRes for the eval sections: they are compiled in package
# Test::Base::Filter, where time and sleep are the builtins (whole seconds)
sub now () { Time::HiRes::time() }
sub nap ($) { Time::HiRes::sleep($_[0]) }

sub pushcert ($$) {
    my ($c, $stamp) = @_;
    redis("HSET", "mdm:pushcert:$c->{topic}", "cert", $c->{pem}, "key", $c->{key_pem},
          "updated_at", $stamp);
}

# enrollments M-FROM..M-TO with tokens token(FROM)..token(TO)
sub enroll ($$;$) {
    my ($from, $to, $topic) = @_;
    redis('EVAL', q{
        for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
            redis.call('HSET', 'mdm:enr:{' .. string.format('M-%05d', i) .. '}',
                'type', 'Device', 'enabled', '1', 'topic', ARGV[3],
                'token', string.format('%064x', i),
                'push_magic', 'magic-' .. i, 'token_updated_at', ARGV[4])
        end
    }, 0, $from, $to, $topic // $TOPIC, now_ms() - 60_000);
}

# an enqueue as the API makes it (contract C1): one pending push per id
sub enqueue ($) {
    my ($id) = @_;
    redis("RPUSH", "mdm:push", $id) if redis("SADD", "mdm:push:pending", $id) == 1;
}

# A TCP proxy to the test Redis on 127.0.0.1.  freeze_proxy() makes the
# connections open so far half-open: kept, never read or written again;
# connections made afterwards are forwarded as usual.
sub start_proxy () {
    my $l = IO::Socket::INET->new(Listen => 64, LocalAddr => '127.0.0.1', LocalPort => 0,
                                  ReuseAddr => 1) or die "proxy listen: $!";
    my $parent = $$;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        my (%peer, @frozen);
        my $freeze = 0;
        local $SIG{USR1} = sub { $freeze = 1 };
        my $sel = IO::Select->new($l);
        while (getppid() == $parent) {
            if ($freeze) {
                for my $s ($sel->handles) {
                    next if $s == $l;
                    push @frozen, $s;
                    $sel->remove($s);
                }
                $freeze = 0;
            }
            for my $s ($sel->can_read(0.05)) {
                if ($s == $l) {
                    my $c = $l->accept or next;
                    my $u = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                                  PeerPort => $ENV{TEST_NGINX_REDIS_PORT})
                        or do { close $c; next };
                    $peer{$c} = $u;
                    $peer{$u} = $c;
                    $sel->add($c, $u);
                    next;
                }
                my $o = $peer{$s} or next;
                my $n = sysread($s, my $buf, 65536);
                if (!$n) {
                    $sel->remove($s, $o);
                    delete @peer{$s, $o};
                    close $s;
                    close $o;
                    next;
                }
                syswrite($o, $buf);
            }
        }
        POSIX::_exit(0);
    }
    my $port = $l->sockport;
    close $l;
    return { pid => $pid, port => $port };
}

sub freeze_proxy ($) { kill 'USR1', $_[0]{pid} }
# the proxy or the fake Redis: killed and reaped
sub stop_child ($) { kill "KILL", $_[0]{pid}; waitpid($_[0]{pid}, 0) }

# A server on 127.0.0.1 that speaks RESP and answers INFO like Redis
# VERSION, anything else +OK; with PASSWORD, NOAUTH until AUTH PASSWORD.
sub start_fake_redis ($;$) {
    my ($version, $password) = @_;
    my $l = IO::Socket::INET->new(Listen => 8, LocalAddr => '127.0.0.1', LocalPort => 0,
                                  ReuseAddr => 1) or die "listen: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        alarm 60;
        while (my $c = $l->accept) {
            my $in = '';
            my $authed = !defined $password;
            while (sysread($c, my $buf, 4096)) {
                $in .= $buf;
                # whole commands: *N\r\n then N times $LEN\r\nBYTES\r\n
                while ($in =~ /^\*(\d+)\r\n/) {
                    my ($n, $pos, @arg) = ($1, length($&));
                    for (1 .. $n) {
                        last unless substr($in, $pos) =~ /^\$(\d+)\r\n/;
                        my $len = $1;
                        $pos += length($&);
                        last if length($in) < $pos + $len + 2;
                        push @arg, substr($in, $pos, $len);
                        $pos += $len + 2;
                    }
                    last if @arg < $n;
                    substr($in, 0, $pos) = '';
                    if (uc $arg[0] eq 'AUTH') {
                        $authed = ($arg[1] // '') eq $password;
                        syswrite($c, $authed ? "+OK\r\n" : "-WRONGPASS invalid password\r\n");
                    } elsif (!$authed) {
                        syswrite($c, "-NOAUTH Authentication required.\r\n");
                    } elsif (uc $arg[0] eq 'INFO') {
                        my $info = "# Server\r\nredis_version:$version\r\n";
                        syswrite($c, '$' . length($info) . "\r\n$info\r\n");
                    } else {
                        syswrite($c, "+OK\r\n");
                    }
                }
            }
            close $c;
        }
        POSIX::_exit(0);
    }
    my $port = $l->sockport;
    close $l;
    return { pid => $pid, port => $port };
}

sub apns_for ($) {
    my $t = token($_[0]);
    return grep { ($_->{token} // '') eq $t } apns_requests($APNS);
}

# tokens answered 200, as a hashref
sub ok_tokens (@) {
    my %t = map { $_->{token} => 1 } grep { ($_->{status} // 0) == 200 } @_;
    return \%t;
}

# a fresh APNs stand-in log, answering by RULES (undef: 200 to everything)
sub apns_reset ($) { apns_clear($APNS); apns_rules($APNS, $_[0]) }

sub stat_apns ($) { redis("HGET", "mdm:stats:apns", $_[0]) // 0 }

sub alive ($) { kill 0, $_[0]{pid} }

# TLS handshakes the APNs stand-in refused (certificate verify failed)
sub handshake_failures () {
    open my $fh, '<', $APNS->{stderr} or return 0;
    return scalar grep { /TLS handshake failed: .*certificate verify failed/ } <$fh>;
}

{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"} for qw(encode_base64 decode_json);
}

run_tests();

__DATA__
=== TEST 1: re-push: a silent enrollment with queued commands is pushed again, less and less often; a check-in resets the backoff; empty queues and disabled enrollments are left alone
--- redis_setup eval
sub {
    ::pushcert($::CERT, 1);
    ::enroll(1, 3);
    redis("RPUSH", "mdm:q:{M-00001}", "11111111-2222-3333-4444-555555555555");
    redis("HSET", "mdm:cmd:11111111-2222-3333-4444-555555555555", "plist", "<plist/>");   # a command that exists
    # M-00002: nothing queued; M-00003: queued but disabled
    redis("RPUSH", "mdm:q:{M-00003}", "11111111-2222-3333-4444-666666666666");
    redis("HSET", "mdm:cmd:11111111-2222-3333-4444-666666666666", "plist", "<plist/>");   # a command that exists
    redis("HSET", "mdm:enr:{M-00003}", "enabled", "0");
    ::apns_reset(undef);
    $::W = ::worker(repush_interval => 1);
    $::S{start} = ::now();
}
--- request
GET /v1/enrollments/M-00001
--- error_code: 200
--- after_each eval
[ sub {
    my $enr = "mdm:enr:{M-00001}";

    ::wait_for(sub { ::apns_for(1) >= 1 }, 5, "the first re-push, nobody calling /v1/push");
    Test::More::cmp_ok((::apns_for(1))[0]{time} - $::S{start}, '<', 3, "pushed within the first interval or two");
    Test::More::is(redis("HGET", $enr, "repushes"), 1, "repushes 1");

    ::wait_for(sub { ::apns_for(1) >= 2 }, 6, "the second re-push");
    Test::More::is(redis("HGET", $enr, "repushes"), 2, "repushes 2");

    ::wait_for(sub { ::apns_for(1) >= 3 }, 9, "the third re-push");
    my @p = ::apns_for(1);
    Test::More::is(scalar(@p), 3, "three pushes, not one a second");
    Test::More::is(redis("HGET", $enr, "repushes"), 3, "repushes 3");
    my ($g1, $g2) = ($p[1]{time} - $p[0]{time}, $p[2]{time} - $p[1]{time});
    Test::More::cmp_ok($g1, '>=', 1.9, "the interval doubled: 2 s after the first");
    Test::More::cmp_ok($g2, '>=', 3.9, "then 4 s")
        or Test::More::diag("gaps $g1 $g2");
    Test::More::cmp_ok($g2, '>', $g1, "growing");
    Test::More::note(sprintf "re-push gaps: %.2f s, %.2f s", $g1, $g2);
    Test::More::is(scalar(grep { $_->{status} == 200 && $_->{body} eq '{"mdm":"magic-1"}' } @p), 3,
                   "real pushes, answered 200");

    # the device checks in after the third push was recorded
    ::wait_for(sub { (redis("HGET", $enr, "push_result") // '') eq ($p[2]{apns_id} // '-') }, 5,
               "the third push recorded");
    redis("HSET", $enr, "last_seen", ::now_ms());
    ::wait_for(sub { ::apns_for(1) >= 4 }, 4, "a push 1 s after the check-in, not 8 s after the last push");
    my $t4 = (::apns_for(1))[3]{time};
    Test::More::cmp_ok($t4 - $p[2]{time}, '<', 3.5, "the backoff was reset");
    Test::More::is(redis("HGET", $enr, "repushes"), 1, "repushes counts again from 1");

    Test::More::is(scalar(::apns_for(2)), 0, "an empty queue is not re-pushed");
    Test::More::is(scalar(::apns_for(3)), 0, "a disabled enrollment is not re-pushed");
    Test::More::is(::stop_all(), 0, "exit 0");
} ]
--- response_body_like: "id":"M-00001"
--- redis_check eval
[
  [ "HEXISTS mdm:enr:{M-00002} repushes", "0" ],
  [ "HEXISTS mdm:enr:{M-00003} repushes", "0" ],
  [ "HEXISTS mdm:enr:{M-00003} push_at", "0" ],
  [ "LLEN mdm:push", 0 ],
]



=== TEST 1b: re-push: a queue whose commands are all gone (deleted, or expired with mdm_result_ttl) is not pushed; its dead entries leave, a live one further down stops that
--- redis_setup eval
sub {
    ::pushcert($::CERT, 1);
    ::enroll(21, 22);
    # M-00021: only commands that no longer exist; M-00022: two gone, then a live one
    redis("RPUSH", "mdm:q:{M-00021}", "GONE-1", "GONE-2");
    redis("RPUSH", "mdm:q:{M-00022}", "GONE-3", "GONE-4", "LIVE-1");
    redis("HSET", "mdm:cmd:LIVE-1", "plist", "<plist/>");
    ::apns_reset(undef);
    $::W = ::worker(repush_interval => 1);
}
--- request
GET /v1/enrollments/M-00021
--- error_code: 200
--- after_each eval
[ sub {
    ::wait_for(sub { ::apns_for(22) >= 1 }, 5, "the live command's enrollment is re-pushed");
    ::nap(2.5);
    Test::More::is(scalar(::apns_for(21)), 0, "no push for commands that are gone");
    Test::More::is(redis("EXISTS", "mdm:q:{M-00021}"), 0, "their entries left the queue");
    Test::More::is_deeply(redis("LRANGE", "mdm:q:{M-00022}", 0, -1), [ "LIVE-1" ], "the live one stays");
    Test::More::is(::stop_all(), 0, "exit 0");
    redis("DEL", "mdm:cmd:LIVE-1", "mdm:q:{M-00022}");
} ]



=== TEST 2: webhooks: the receiver always answers 500: after webhook_retries attempts the event is a dead letter, out of mdm:events
--- redis_setup eval
sub {
    $::HOOK = start_webhook(rules => { status => 500 });
    $::W = ::worker(webhook_url => $::HOOK->{hook_url}, webhook_retries => 3,
                    webhook_backoff_ms => 50);
}
--- request eval
checkin_request("nanomdm/mdm/testdata/Authenticate.2.plist")
--- more_headers eval
"Content-Type: $t::MDM::CheckinType"
--- signed_by: mac
--- error_code: 200
--- after_each eval
[ sub {
    ::wait_for(sub { redis("XLEN", "mdm:webhooks:dead") >= 1 }, 10, "a dead letter");
    ::wait_for(sub { redis("XLEN", "mdm:events") == 0 }, 5, "removed from mdm:events");
    ::nap(0.5);   # any further attempt would come within this (backoff 50, 100 ms)
    my @h = webhook_requests($::HOOK);
    Test::More::is(scalar(@h), 3, "3 attempts, no more");
    Test::More::is_deeply([ map { decode_json($_->{body})->{topic} } @h ],
                          [ ("mdm.Authenticate") x 3 ], "of the event");
    my $d = redis("XRANGE", "mdm:webhooks:dead", "-", "+");
    my %f = @{ $d->[0][1] };
    Test::More::is($f{error}, "HTTP 500", "dead letter: the last error");
    Test::More::is($f{type}, "Authenticate", "dead letter: the event's fields");
    Test::More::is($f{id}, $::UDID, "dead letter: the enrollment");
    Test::More::like($f{event_id}, qr/^\d+-\d+$/, "dead letter: the event id");
    Test::More::is(decode_json($h[0]{body})->{event_id}, $f{event_id}, "the event id the receiver saw");
    Test::More::like(worker_log($::W), qr/failed 3 times \(HTTP 500\): moved to mdm:webhooks:dead/,
                     "logged");
    $::S{dead_event} = $f{event_id};
} ]
--- redis_check eval
[
  [ "XLEN mdm:webhooks:dead", 1 ],
  [ "XLEN mdm:events", 0 ],
  [ "XPENDING mdm:events webhooks", sub { $_[0][0] == 0 } ],
]



=== TEST 3: GET /v1/webhooks shows the dead letter
--- request
GET /v1/webhooks
--- error_code: 200
--- after_each eval
[ sub {
    my $j = decode_json($_[1]);
    Test::More::is($j->{dead_total}, 1, "dead_total 1");
    Test::More::is($j->{backlog}, 0, "no backlog");
    Test::More::is($j->{pending}, 0, "nothing pending");
    Test::More::is(scalar @{ $j->{dead} }, 1, "one dead entry");
    my $d = $j->{dead}[0];
    Test::More::is($d->{error}, "HTTP 500", "with its error");
    Test::More::is($d->{event_id}, $::S{dead_event}, "and event id");
    Test::More::is($d->{type}, "Authenticate", "type");
    Test::More::is($d->{id}, $::UDID, "enrollment");
    Test::More::ok(!exists $d->{body}, "no body");
} ]



=== TEST 4: the next events of the same enrollment still go out, in order, once the receiver answers 200
--- redis_setup eval
sub {
    webhook_clear($::HOOK);
    # the first three requests after this get 500, then 200
    webhook_rules($::HOOK, { sequence => [ 500, 500, 500 ] });
}
--- request eval
[ checkin_request("nanomdm/mdm/testdata/TokenUpdate.2.plist"),
  checkin_request("commandment/testdata/CheckOut/10.11.x.xml", UDID => $::UDID) ]
--- more_headers eval
["Content-Type: $t::MDM::CheckinType", "Content-Type: $t::MDM::CheckinType"]
--- signed_by eval
["mac", "mac"]
--- error_code eval
[200, 200]
--- after_each eval
[ undef, sub {
    my @h = webhook_wait($::HOOK, 4, 20);
    ::nap(0.3);
    @h = webhook_requests($::HOOK);
    Test::More::is_deeply([ map { decode_json($_->{body})->{topic} . " " . $_->{status} } @h ],
                          [ ("mdm.TokenUpdate 500") x 3, "mdm.CheckOut 200" ],
                          "the first event dead after 3 attempts, the next delivered after it");
    ::wait_for(sub { redis("XLEN", "mdm:webhooks:dead") == 2 }, 5, "second dead letter");
    ::wait_for(sub { redis("XLEN", "mdm:events") == 0 }, 5, "stream emptied");
    my $d = redis("XREVRANGE", "mdm:webhooks:dead", "+", "-", "COUNT", 1);
    my %f = @{ $d->[0][1] };
    Test::More::is($f{type}, "TokenUpdate", "the TokenUpdate is the new dead letter");
    Test::More::is(::stop_all(), 0, "exit 0");
    stop_server($::HOOK);
} ]



=== TEST 5: 403 BadCertificate: recorded, counted, logged, not retried
--- redis_setup eval
sub {
    redis("DEL", "mdm:stats:apns");
    ::enroll(10, 10);
    ::apns_reset({ tokens => { ::token(10) => { status => 403, reason => 'BadCertificate' } } });
    $::W = ::worker();
}
--- request
PUT /v1/push/M-00010
--- error_code: 200
--- after_each eval
[ sub {
    ::wait_for(sub { redis("HEXISTS", "mdm:enr:{M-00010}", "push_error") }, 10, "push_error recorded");
    ::nap(0.6);   # retries would come after 100, 200 ms
    Test::More::is(scalar(::apns_for(10)), 1, "exactly one request: not retried");
    Test::More::like(worker_log($::W),
                     qr/error: APNs refused the push certificate for topic "\Q$::TOPIC\E": APNs 403 BadCertificate/,
                     "an error line in the worker log");
} ]
--- redis_check eval
[
  [ "HGET mdm:enr:{M-00010} push_error", "APNs 403 BadCertificate" ],
  [ "HEXISTS mdm:enr:{M-00010} push_result", "0" ],
  [ "HEXISTS mdm:enr:{M-00010} token_invalid", "0" ],
  [ "HGET mdm:stats:apns bad_certificate", 1 ],
  [ "LLEN mdm:push", 0 ],
  [ "LLEN mdm:push:proc:w1", 0 ],
]



=== TEST 6: a push certificate APNs does not trust: "TLS to APNs failed", counted, retried, and delivered once a good one is uploaded
--- redis_setup eval
sub {
    ::pushcert($::ROGUE, 1);
    ::enroll(11, 11, $::TOPIC_R);
    ::apns_reset(undef);
    $::S{hs} = ::handshake_failures();
}
--- request
PUT /v1/push/M-00011
--- error_code: 200
--- after_each eval
[ sub {
    # the stand-in logs each refused handshake
    ::wait_for(sub { ::handshake_failures() - $::S{hs} >= 2 }, 5, "two handshakes refused by APNs");
    Test::More::pass("retried after the TLS failure");
    ::nap(0.1);
    Test::More::cmp_ok(::stat_apns("tls_failure"), '>=', 2, "counted in mdm:stats:apns tls_failure")
        or Test::More::diag("push_error: " . (redis("HGET", "mdm:enr:{M-00011}", "push_error") // '(none)'));
    Test::More::like(worker_log($::W), qr/error: TLS to APNs failed for topic "\Q$::TOPIC_R\E"/,
                     "logged as a TLS failure");
    Test::More::is(scalar(grep { ($_->{status} // 0) == 200 } ::apns_for(11)), 0, "nothing delivered with it");
    Test::More::is(redis("HEXISTS", "mdm:enr:{M-00011}", "push_result"), 0, "no result yet");

    ::pushcert($::GOOD_R, 2);
    ::wait_for(sub { grep { ($_->{status} // 0) == 200 } ::apns_for(11) }, 15, "delivered with the new certificate");
    my ($r) = grep { ($_->{status} // 0) == 200 } ::apns_for(11);
    Test::More::like($r->{client_subject}, qr/APSP:good-0001/, "the new certificate was presented");
    ::wait_for(sub { redis("HEXISTS", "mdm:enr:{M-00011}", "push_result") }, 5, "recorded");
    Test::More::is(redis("HEXISTS", "mdm:enr:{M-00011}", "push_error"), 0, "no error left");
    Test::More::is(::stop_all(), 0, "exit 0");
} ]



=== TEST 7: APNs answers 400 to every push: reported as a configuration error, no token marked dead
--- redis_setup eval
sub {
    redis("DEL", "mdm:stats:apns");
    ::enroll(20, 29);
    ::apns_reset({ status => 400, reason => 'BadDeviceToken' });
    $::W = ::worker();
}
--- request eval
"PUT /v1/push/" . ::ids(20, 29)
--- error_code: 200
--- after_each eval
[ sub {
    ::wait_for(sub { ::stat_apns("bad_request") == 10 }, 10, "10 answers counted");
    ::wait_for(sub { worker_log($::W) =~ /to the last 10 pushes/ }, 5, "the log line");
    my $log = worker_log($::W);
    Test::More::like($log, qr/error: APNs answered 400 \(BadDeviceToken\) to the last 10 pushes: .*tokens are not marked dead/,
                     "a configuration error in the worker log");
    Test::More::is(scalar(() = $log =~ /to the last 10 pushes/g), 1, "said once");
    Test::More::is(scalar(grep { redis("HEXISTS", "mdm:enr:{" . ::id($_) . "}", "token_invalid") } 20 .. 29), 0,
                   "no token_invalid");
    Test::More::is(scalar(grep { (redis("HGET", "mdm:enr:{" . ::id($_) . "}", "push_error") // '') eq "APNs 400 BadDeviceToken" } 20 .. 29),
                   10, "push_error recorded for each");
    Test::More::is(scalar(grep { ::apns_for($_) == 1 } 20 .. 29), 10, "one request each: a 400 is not retried");

    # the tokens are still pushed to
    apns_rules($::APNS, undef);
    redis("RPUSH", "mdm:push", "M-00020");
    ::wait_for(sub { grep { ($_->{status} // 0) == 200 } ::apns_for(20) }, 10, "pushed again");
    ::wait_for(sub { redis("HEXISTS", "mdm:enr:{M-00020}", "push_result") }, 5, "recorded");
    Test::More::is(redis("HEXISTS", "mdm:enr:{M-00020}", "push_error"), 0, "and fine");
    Test::More::is(::stop_all(), 0, "exit 0");
} ]



=== TEST 8: two workers on one Redis share 500 pushes
--- redis_setup eval
sub {
    redis("DEL", "mdm:stats:apns");
    ::enroll(1000, 1499);
    ::apns_reset({ default => { status => 200, delay_ms => 50 } });
    ::worker(worker_id => 'wa', max_inflight => 25);
    ::worker(worker_id => 'wb', max_inflight => 25);
}
--- request eval
"PUT /v1/push/" . ::ids(1000, 1499)
--- error_code: 200
--- after_each eval
[ sub {
    my %max = (wa => 0, wb => 0);
    my $deadline = ::now() + 20;
    while (::now() < $deadline && ($max{wa} == 0 || $max{wb} == 0)) {
        for my $w (qw(wa wb)) {
            my $n = redis("LLEN", "mdm:push:proc:$w");
            $max{$w} = $n if $n > $max{$w};
        }
        ::nap(0.005);
    }
    Test::More::cmp_ok($max{wa}, '>', 0, "worker wa took pushes (its processing list was used)");
    Test::More::cmp_ok($max{wb}, '>', 0, "worker wb took pushes (its processing list was used)");

    ::wait_for(sub { keys(%{ ::ok_tokens(apns_requests($::APNS)) }) >= 500 }, 30, "every token pushed");
    my @r = apns_requests($::APNS);
    my $ok = ::ok_tokens(@r);
    Test::More::is(scalar(grep { $ok->{::token($_)} } 1000 .. 1499), 500, "every token pushed at least once");
    my %conn = map { $_->{conn} => 1 } @r;
    Test::More::cmp_ok(scalar(keys %conn), '>=', 2, "over the two workers' connections");
    for my $i (0, 1) {
        Test::More::like(worker_log($::WS[$i]), qr/push certificate for topic "\Q$::TOPIC\E" loaded/,
                         "worker " . ($i ? "wb" : "wa") . " pushed");
    }
    ::wait_for(sub { ::stat_apns("ok") >= 500 }, 10, "all recorded");
    ::wait_for(sub { redis("LLEN", "mdm:push:proc:wa") + redis("LLEN", "mdm:push:proc:wb") == 0 }, 10,
               "processing lists emptied");
    Test::More::is_deeply([ ::stop_all() ], [ 0, 0 ], "both exit 0");
} ]
--- redis_check eval
[
  [ "LLEN mdm:push", 0 ],
  [ "LLEN mdm:push:proc:wa", 0 ],
  [ "LLEN mdm:push:proc:wb", 0 ],
  [ "HGET mdm:stats:apns ok", 500 ],
  [ "HEXISTS mdm:enr:{M-01499} push_result", 1 ],
]



=== TEST 9: SIGTERM in the middle of a burst: exit 0 soon, the pushes in flight complete and are recorded, the rest stay queued for the next worker
--- redis_setup eval
sub {
    redis("DEL", "mdm:stats:apns");
    ::enroll(2000, 2199);
    ::apns_reset({ default => { status => 200, delay_ms => 300 } });
    $::W = ::worker(max_inflight => 50);
}
--- request eval
"PUT /v1/push/" . ::ids(2000, 2199)
--- error_code: 200
--- after_each eval
[ sub {
    # the first push warms the connection (300 ms), then 49 more go out
    ::wait_for(sub { apns_requests($::APNS) >= 10 }, 10, "a burst in flight");
    my $t0 = ::now();
    my $st = stop_worker($::W, 10);
    @::WS = ();
    Test::More::is($st, 0, "exit status 0");
    Test::More::cmp_ok(::now() - $t0, '<', 3, "within a few seconds");
    Test::More::like(worker_log($::W), qr/signal 15: finishing \d+ pushes in flight/, "logged the stop");

    my @r = apns_requests($::APNS);
    my %sent = map { $_->{token} => 1 } @r;
    my @sent = grep { $sent{::token($_)} } 2000 .. 2199;
    Test::More::cmp_ok(scalar(@sent), '>', 0, "some were sent");
    Test::More::cmp_ok(scalar(@sent), '<', 200, "not all");
    Test::More::is(scalar(grep { ($_->{status} // 0) != 200 } @r), 0, "all answered 200");
    Test::More::is(scalar(grep { !redis("HEXISTS", "mdm:enr:{" . ::id($_) . "}", "push_result") } @sent), 0,
                   "every push in flight completed and its result is recorded");
    Test::More::is(::stat_apns("ok"), scalar(@sent), "counted");
    Test::More::is(redis("LLEN", "mdm:push:proc:w1"), 0, "nothing left in the processing list");
    my %queued = map { $_ => 1 } @{ redis("LRANGE", "mdm:push", 0, -1) };
    my @missing = grep { !$sent{::token($_)} && !$queued{::id($_)} } 2000 .. 2199;
    Test::More::is(scalar(@missing), 0, "the pushes not sent are still in mdm:push")
        or Test::More::diag("lost: @missing[0 .. ($#missing > 9 ? 9 : $#missing)]");
    Test::More::is(scalar(keys %queued), 200 - @sent, "exactly those");

    apns_rules($::APNS, undef);
    $::W = ::worker();
    ::wait_for(sub { keys(%{ ::ok_tokens(apns_requests($::APNS)) }) >= 200 }, 30, "the new worker pushes the rest");
    my $ok = ::ok_tokens(apns_requests($::APNS));
    Test::More::is(scalar(grep { $ok->{::token($_)} } 2000 .. 2199), 200, "every token pushed");
    ::wait_for(sub { redis("LLEN", "mdm:push") + redis("LLEN", "mdm:push:proc:w1") == 0 }, 10, "queues drained");
    Test::More::is(::stop_all(), 0, "exit 0");
} ]



=== TEST 10: two topics at once: each push is made with its own topic's certificate, one connection each
--- redis_setup eval
sub {
    ::pushcert($::CERT_B, 1);
    ::enroll(3000, 3019, $::TOPIC);
    ::enroll(3020, 3039, $::TOPIC_B);
    ::apns_reset(undef);
    $::W = ::worker();
}
--- request eval
"PUT /v1/push/" . ::ids(3000, 3039)
--- error_code: 200
--- after_each eval
[ sub {
    my @r = apns_wait($::APNS, 40, 20);
    Test::More::is(scalar(@r), 40, "40 pushes");
    Test::More::is(scalar(grep { ($_->{status} // 0) == 200 } @r), 40, "all answered 200");
    my @bad = grep { ($_->{client_uid} // '') ne ($_->{headers}{'apns-topic'} // '-') } @r;
    Test::More::is(scalar(@bad), 0, "client certificate UID = apns-topic for every push")
        or Test::More::diag(explain($bad[0]));
    my @a = grep { $_->{headers}{'apns-topic'} eq $::TOPIC } @r;
    my @b = grep { $_->{headers}{'apns-topic'} eq $::TOPIC_B } @r;
    Test::More::is(scalar(@a), 20, "20 on topic A");
    Test::More::is(scalar(@b), 20, "20 on topic B");
    Test::More::is(scalar(grep { hex($_->{token}) >= 3020 } @a), 0, "topic A pushes are topic A's enrollments");
    Test::More::is(scalar(grep { $_->{client_subject} =~ /APSP:topic-b-0001/ } @b), 20, "with certificate B");
    my %ca = map { $_->{conn} => 1 } @a;
    my %cb = map { $_->{conn} => 1 } @b;
    Test::More::is(scalar(keys %ca) . "+" . scalar(keys %cb), "1+1", "one connection per certificate");
    Test::More::ok(!grep({ $cb{$_} } keys %ca), "not shared");
    ::wait_for(sub { redis("HEXISTS", "mdm:enr:{M-03039}", "push_result")
                     && redis("HEXISTS", "mdm:enr:{M-03000}", "push_result") }, 10, "recorded");
    Test::More::is(::stop_all(), 0, "exit 0");
} ]



=== TEST 11: the re-push schedule does not depend on how many other keys Redis holds
--- redis_setup eval
sub {
    # 100,000 unrelated keys (a fleet's enrollments, results, commands...)
    redis("EVAL", "for i = 1, 100000 do redis.call('SET', 'filler:' .. i, 'x') end", 0);
    ::enroll(5000, 5000);
    redis("RPUSH", "mdm:q:{M-05000}", "11111111-2222-3333-4444-777777777777");
    redis("HSET", "mdm:cmd:11111111-2222-3333-4444-777777777777", "plist", "<plist/>");   # a command that exists
    redis("HSET", "mdm:enr:{M-05000}", "push_at", ::now_ms() - 10_000);   # due now
    ::apns_reset(undef);
    $::W = ::worker(repush_interval => 1);
}
--- request
GET /v1/enrollments/M-05000
--- error_code: 200
--- after_each eval
[ sub {
    my $ok = eval { ::wait_for(sub { ::apns_for(5000) >= 1 }, 4, "the re-push"); 1 };
    Test::More::ok($ok, "re-pushed within the interval (1 s) and a tick or two, not after a scan of the whole keyspace");
    Test::More::is(::stop_all(), 0, "exit 0");
    redis("EVAL", "for i = 1, 100000 do redis.call('DEL', 'filler:' .. i) end", 0);
} ]



=== TEST 12: Redis down when the worker starts: it keeps trying and starts working once Redis is up
--- scenario eval
sub {
    redis_stop();
    $::W = ::worker();
    ::nap(1.5);
    Test::More::ok(::alive($::W), "still running without Redis");
    Test::More::like(worker_log($::W), qr/redis 127\.0\.0\.1:\d+ \(commands\): .*reconnecting/,
                     "logged that Redis is unavailable");
    redis_start();
    # Redis keeps nothing across a restart: the data again
    ::pushcert($::CERT, 3);
    ::enroll(4000, 4000);
    redis("RPUSH", "mdm:push", "M-04000");
    ::wait_for(sub { grep { ($_->{status} // 0) == 200 } ::apns_for(4000) }, 15, "pushed once Redis is up");
    ::wait_for(sub { redis("HEXISTS", "mdm:enr:{M-04000}", "push_result") }, 5, "recorded");
    Test::More::like(worker_log($::W), qr/redis 127\.0\.0\.1:\d+ \(commands\) is back/, "logged that it is back");
    Test::More::is(redis("LLEN", "mdm:push:proc:w1"), 0, "processing list empty");
    Test::More::ok(redis("EXISTS", "mdm:worker:w1"), "heartbeat written");
    Test::More::is(::stop_all(), 0, "exit 0");
}



=== TEST 13: one pending push per enrollment (issue 9 #10, contract C1): five enqueues while no worker runs make one push; the worker takes the id off mdm:push:pending, so the next enqueue pushes again
--- scenario eval
sub {
    ::pushcert($::CERT, 4);
    ::enroll(4100, 4100);
    ::enqueue("M-04100") for 1 .. 5;
    Test::More::is(redis("LLEN", "mdm:push"), 1, "one entry in mdm:push for five enqueues");
    ::worker();
    ::wait_for(sub { ::apns_for(4100) >= 1 }, 10, "the push");
    ::wait_for(sub { redis("HEXISTS", "mdm:enr:{M-04100}", "push_result") }, 5, "recorded");
    ::nap(0.5);
    Test::More::is(scalar(::apns_for(4100)), 1, "one push for five enqueues");
    Test::More::is(redis("SISMEMBER", "mdm:push:pending", "M-04100"), 0,
                   "no longer pending once taken");
    ::enqueue("M-04100");
    ::wait_for(sub { ::apns_for(4100) >= 2 }, 10, "the next enqueue pushes again");
    Test::More::is(::stop_all(), 0, "exit 0");
}



=== TEST 14: a dead worker's processing list is taken over by a live worker at its next heartbeat, without restarting it (issue 9 #11)
--- scenario eval
sub {
    ::enroll(4200, 4219);
    my $live = ::worker(worker_id => 'live');
    ::nap(0.5);
    # the doomed worker takes 20 pushes that APNs holds, then is killed
    apns_rules($::APNS, { default => { status => 200, delay_ms => 30_000 } });
    my $doomed = start_worker(apns_url => $::APNS->{url}, apns_ca => $::APNS->{server_ca},
                              worker_id => 'doomed', repush_interval => 0);
    ::wait_for(sub { redis("EXISTS", "mdm:worker:doomed") }, 5, "the doomed worker's heartbeat");
    # the doomed one takes them all: the live one is paused once its
    # blocking wait (1 s) has ended
    kill 'STOP', $live->{pid};
    ::nap(1.5);
    ::enqueue(::id($_)) for 4200 .. 4219;
    ::wait_for(sub { redis("LLEN", "mdm:push:proc:doomed") == 20 }, 10, "taken by the doomed worker");
    kill_worker($doomed);
    apns_rules($::APNS, undef);
    kill 'CONT', $live->{pid};
    # its heartbeat expires after 3 s (heartbeat 1); the live worker beats every second
    ::wait_for(sub { keys(%{ ::ok_tokens(apns_requests($::APNS)) }) >= 20 }, 15,
               "the live worker delivered the dead worker's pushes");
    Test::More::like(worker_log($live), qr/put back 20 pushes of workers whose heartbeat expired/,
                     "logged the takeover");
    ::wait_for(sub { redis("LLEN", "mdm:push:proc:live") == 0 }, 5, "all recorded");
    Test::More::is(redis("EXISTS", "mdm:push:proc:doomed"), 0, "the dead worker's list is gone");
    Test::More::is(redis("SISMEMBER", "mdm:push:procs", "mdm:push:proc:doomed"), 0,
                   "and unregistered");
    Test::More::is(::stop_all(), 0, "exit 0");
}



=== TEST 15: no duplicate pushes after a reconnect: jobs in flight when the Redis connections drop are not put back (issue 9 #11)
--- scenario eval
sub {
    redis("DEL", "mdm:stats:apns");
    ::enroll(4300, 4319);
    my $w = ::worker();
    ::nap(0.5);
    apns_rules($::APNS, { default => { status => 200, delay_ms => 2000 } });
    ::enqueue(::id($_)) for 4300 .. 4319;
    ::wait_for(sub { apns_requests($::APNS) >= 20 }, 10, "all 20 in flight");
    redis("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
    ::wait_for(sub { worker_log($w) =~ /\(commands\) is back/ }, 10, "reconnected");
    ::wait_for(sub { ::stat_apns("ok") >= 20 }, 15, "all recorded");
    ::nap(1.5);
    my %n;
    $n{ $_->{token} }++ for apns_requests($::APNS);
    Test::More::is(scalar(keys %n), 20, "20 tokens pushed");
    Test::More::is(scalar(grep { $_ > 1 } values %n), 0, "none pushed twice");
    Test::More::is(redis("LLEN", "mdm:push:proc:w1"), 0, "processing list empty");
    apns_rules($::APNS, undef);
    Test::More::is(::stop_all(), 0, "exit 0");
}



=== TEST 16: device strings are escaped: a Topic with a newline is logged escaped, never as a forged log line; a PushMagic with quotes and backslashes is a JSON string (issue 9 #14)
--- scenario eval
sub {
    redis("HSET", "mdm:enr:{M-04400}", "type", "Device", "enabled", "1",
          "topic", "evil\n2030-01-01T00:00:00Z mdm-worker[1] error: forged\x01",
          "token", ::token(4400), "push_magic", "m", "token_updated_at", 1);
    ::enroll(4401, 4401);
    redis("HSET", "mdm:enr:{M-04401}", "push_magic", "a\"b\\c}\"x");
    my $w = ::worker();
    ::enqueue("M-04400");
    ::enqueue("M-04401");
    ::wait_for(sub { redis("HEXISTS", "mdm:enr:{M-04400}", "push_error") }, 10, "M-04400 recorded");
    ::wait_for(sub { ::apns_for(4401) >= 1 }, 10, "M-04401 pushed");
    my $log = worker_log($w);
    Test::More::like($log, qr/no push certificate for topic "evil\\n2030-01-01T00:00:00Z mdm-worker\[1\] error: forged\\x01"/,
                     "the topic is logged escaped");
    Test::More::unlike($log, qr/^2030-01-01T00:00:00Z/m, "no forged line");
    my ($r) = ::apns_for(4401);
    my $body = eval { decode_json($r->{body}) };
    Test::More::is($body && $body->{mdm}, "a\"b\\c}\"x", "the push magic arrives as a JSON string");
    Test::More::is($r->{status}, 200, "APNs took it");
    Test::More::is(::stop_all(), 0, "exit 0");
}



=== TEST 17: a half-open Redis connection (the peer stops answering, nothing is closed) is dropped after redis_timeout and made again: the worker goes on pushing (issue 9 #9)
--- scenario eval
sub {
    ::pushcert($::CERT, 7);
    ::enroll(4500, 4501);
    my $proxy = ::start_proxy();
    my $w = ::worker(redis => "127.0.0.1:$proxy->{port}", redis_timeout => 2);
    ::enqueue("M-04500");
    ::wait_for(sub { ::apns_for(4500) >= 1 }, 10, "pushed through the proxy");
    ::freeze_proxy($proxy);
    ::nap(0.3);
    my $t0 = ::now();
    ::enqueue("M-04501");
    my $ok = eval { ::wait_for(sub { ::apns_for(4501) >= 1 }, 15, "pushed after the freeze"); 1 };
    Test::More::ok($ok, "pushed after the connections went half-open")
        or Test::More::diag(worker_log($w));
    Test::More::cmp_ok(::now() - $t0, '<', 8, "within the timeout (2 s + 1 s of BLOCK) and a reconnect");
    Test::More::like(worker_log($w), qr/\(blocking\): no reply in 3 s, reconnecting/,
                     "logged the dropped blocking connection");
    Test::More::is(::stop_all(), 0, "exit 0");
    ::stop_child($proxy);
}



=== TEST 18: Redis SIGSTOPped for longer than redis_timeout: the worker drops its connections, keeps trying, and pushes once Redis runs again (issue 9 #9)
--- scenario eval
sub {
    ::enroll(4600, 4601);
    my $w = ::worker(redis_timeout => 1);
    ::enqueue("M-04600");
    ::wait_for(sub { ::apns_for(4600) >= 1 }, 10, "pushed");
    my ($pid) = redis("INFO", "server") =~ /process_id:(\d+)/;
    kill 'STOP', $pid;
    ::nap(4);
    kill 'CONT', $pid;
    ::enqueue("M-04601");
    ::wait_for(sub { ::apns_for(4601) >= 1 }, 10, "pushed after SIGCONT");
    Test::More::like(worker_log($w), qr/no reply in \d s, reconnecting/, "the stall was noticed");
    Test::More::ok(::alive($w), "still running");
    Test::More::is(::stop_all(), 0, "exit 0");
}



=== TEST 19: a host name (localhost:PORT) is resolved at every connect: the worker pushes, loses Redis, and pushes again once it is back (issue 9 #9)
--- scenario eval
sub {
    ::enroll(4700, 4701);
    my $w = ::worker(redis => "localhost:$ENV{TEST_NGINX_REDIS_PORT}");
    ::enqueue("M-04700");
    ::wait_for(sub { ::apns_for(4700) >= 1 }, 10, "pushed");
    redis_stop();
    ::nap(0.5);
    redis_start();
    ::pushcert($::CERT, 5);
    ::enroll(4701, 4701);
    ::enqueue("M-04701");
    ::wait_for(sub { ::apns_for(4701) >= 1 }, 15, "pushed after the reconnect");
    Test::More::like(worker_log($w), qr/redis localhost:\d+ \(commands\) is back/, "reconnected by name");
    Test::More::is(::stop_all(), 0, "exit 0");
}



=== TEST 20: READONLY (a replica after a failover) drops the connection and reconnects, instead of failing every call on it (issue 9 #9)
--- scenario eval
sub {
    ::pushcert($::CERT, 6);
    ::enroll(4800, 4800);
    my $w = ::worker();
    ::nap(0.5);
    # a replica of nothing: it keeps its data, refuses writes
    redis("REPLICAOF", "127.0.0.1", "1");
    ::wait_for(sub { worker_log($w) =~ /READONLY.*reconnecting/ }, 10, "READONLY noticed");
    redis("REPLICAOF", "NO", "ONE");
    ::enqueue("M-04800");
    ::wait_for(sub { ::apns_for(4800) >= 1 }, 15, "pushed once writable again");
    Test::More::is(::stop_all(), 0, "exit 0");
}



=== TEST 21: Redis older than 6.2 (LMOVE, BLMOVE, XAUTOCLAIM): a clear error and exit status 1; an eviction policy: a warning (issue 9 #17)
--- scenario eval
sub {
    my $fake = ::start_fake_redis("6.0.0");
    my $w = ::worker(redis => "127.0.0.1:$fake->{port}");
    ::wait_for(sub { worker_log($w) =~ /needs Redis 6\.2/ }, 10, "the version error");
    Test::More::like(worker_log($w), qr/error: redis 127\.0\.0\.1:\d+ is version 6\.0\.0: mdm-worker needs Redis 6\.2 or later/,
                     "says which version it found and which it needs");
    my $st = stop_worker($w);
    @::WS = ();
    Test::More::is($st, 1, "exit status 1");
    ::stop_child($fake);

    # with a password: AUTH goes first, then the version check
    $fake = ::start_fake_redis("6.0.0", "pw");
    $w = ::worker(redis => "127.0.0.1:$fake->{port}", redis_password => "pw");
    ::wait_for(sub { worker_log($w) =~ /needs Redis 6\.2/ }, 10, "the version error after AUTH");
    Test::More::unlike(worker_log($w), qr/NOAUTH/, "INFO only after AUTH");
    Test::More::is(stop_worker($w), 1, "exit status 1");
    @::WS = ();
    ::stop_child($fake);

    redis("CONFIG", "SET", "maxmemory-policy", "allkeys-lru");
    $w = ::worker();
    ::wait_for(sub { worker_log($w) =~ /maxmemory-policy/ }, 10, "the eviction warning");
    Test::More::like(worker_log($w), qr/warn: redis 127\.0\.0\.1:\d+ has maxmemory-policy allkeys-lru: .*set maxmemory-policy noeviction/,
                     "warns about eviction");
    redis("CONFIG", "SET", "maxmemory-policy", "noeviction");
    Test::More::is(::stop_all(), 0, "exit 0");
}



=== TEST 22: only the blocking connection is lost: the worker takes pushes again (the retry of a failed take is armed)
--- scenario eval
sub {
    ::pushcert($::CERT, 8);
    ::enroll(4900, 4900);
    my $w = ::worker();
    my $id;
    ::wait_for(sub { ($id) = redis("CLIENT", "LIST") =~ /\bid=(\d+) [^\n]*\bcmd=blmove\b/; $id }, 10,
               "the worker's BLMOVE");
    redis("CLIENT", "KILL", "ID", $id);
    ::wait_for(sub { worker_log($w) =~ /\(blocking\) is back/ }, 10, "reconnected");
    ::enqueue("M-04900");
    ::wait_for(sub { ::apns_for(4900) >= 1 }, 10, "pushed");
    Test::More::is(::stop_all(), 0, "exit 0");
}
