# The SCEP CA's own bound on private-key work (mdm_scep_concurrency tasks
# in the thread pool per worker, mdm_scep_queue requests waiting, FIFO):
# a burst never takes more of the pool than that, whatever its size, and
# what does not fit is a 503 with Retry-After before anything is consumed
# (the device retries; its one-time challenge is still good).

use Test::Nginx::Socket 'no_plan';
use t::MDM;
use t::MDMEnroll;

no_shuffle();

our $Dir = scep_setup(pki_dir() . '/scep-conc');
our $N = 24;
$ENV{TEST_NGINX_CONC} = $Dir;

# $N PKCSReqs, each with its own one-time challenge (one device key for
# all: key generation is what would make this test slow)
{
    mkdir "$Dir/$_" for 'key0', map { "r$_" } 1 .. $N;
    t::MDM::_run("$Dir/scepclient", 'req', "$Dir/key0", "$Dir/ca.pem",
                 'conc 0', 'x', 'aes128', 'sha256');
    for my $i (1 .. $N) {
        t::MDM::_run("$Dir/scepclient", 'req', "$Dir/r$i", "$Dir/ca.pem",
                     "conc $i", "conc-challenge-$i", 'aes128', 'sha256',
                     "keydir=$Dir/key0");
    }
}

sub challenges {
    return [ 'FLUSHALL',
             map { [ 'SET', "mdm:scep:challenge:conc-challenge-$_", '1' ] }
                 1 .. $N ];
}

# all at once; every answer is a SUCCESS or a 503 that consumed nothing
sub burst {
    my ($block, $path, $want_busy) = @_;
    my $n = $block->name;
    my @r = @{ concurrent_requests(Test::Nginx::Socket::server_port(),
        [ map { http_request(POST => "$path?operation=PKIOperation",
                             t::MDM::_slurp("$::Dir/r$_/req.der")) } 1 .. $::N ]) };
    my (@ok, @busy);
    for my $i (1 .. $::N) {
        my $r = $r[$i - 1];
        if (($r->{status} // 0) == 503) {
            push @busy, $i;
            Test::More::is($r->{headers}{'retry-after'}, '2', "$n - 503 $i: Retry-After")
                if @busy <= 3;
            Test::More::ok(defined redis('GET', "mdm:scep:challenge:conc-challenge-$i"),
                           "$n - 503 $i: its challenge is still good") if @busy <= 3;
            next;
        }
        t::MDM::_spew("$::Dir/r$i/rep.der", $r->{body} // '');
        my ($st, $out) = t::MDM::run_cmd("$::Dir/scepclient", 'rep', "$::Dir/r$i",
            "$::Dir/ca.pem", "$::Dir/r$i/rep.der");
        push @ok, $i if ($r->{status} // 0) == 200 && $st == 0
                        && $out =~ /^pkiStatus=0$/m;
    }
    Test::More::is(@ok + @busy, $::N, "$n - every request a SUCCESS or a 503 ("
                   . scalar(@ok) . " + " . scalar(@busy) . ")");
    if ($want_busy) {
        Test::More::ok(@busy > 0, "$n - some waited for no slot: 503");
    } else {
        Test::More::is(scalar @busy, 0, "$n - none refused: they waited their turn");
    }
    Test::More::is(redis('ZCARD', 'mdm:scep:certs'), scalar @ok,
                   "$n - one certificate per SUCCESS");
    return scalar @busy;
}

{
    no strict 'refs';
    *{"Test::Base::Filter::burst"} = \&main::burst;
}

mdm_defaults(
    http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
    config => q{
        mdm_scep_ca $TEST_NGINX_CONC/ca.pem $TEST_NGINX_CONC/ca.key;
        location = /scep { mdm_scep; }
        location = /scep/noqueue { mdm_scep; mdm_scep_queue 0; }
        location = /scep/two { mdm_scep; mdm_scep_concurrency 2; mdm_scep_queue 0; }
    },
);

run_tests();

__DATA__

=== TEST 1: defaults (one task at a time, 256 may wait): a burst all waits its turn, none refused
--- redis_setup eval
::challenges()
--- request
GET /scep?operation=GetCACaps
--- error_code: 200
--- after_each eval
sub { ::burst($_[0], '/scep', 0) }
--- no_error_log
[warn]
[error]



=== TEST 2: no waiting room for new requests (mdm_scep_queue 0): what finds the one slot taken is 503, one line each naming 1 task running
--- redis_setup eval
::challenges()
--- request
GET /scep?operation=GetCACaps
--- error_code: 200
--- after_each eval
sub {
    my $busy = ::burst($_[0], '/scep/noqueue', 1);
    my $log = t::MDM::_slurp($Test::Nginx::Socket::ErrLogFile) // '';
    my @lines = $log =~ /^.*\[warn\].*SCEP request refused \(503\): busy.*$/mg;
    Test::More::is(scalar @lines, $busy, "one [warn] line per 503");
    # (requests already started may wait for their second step: never refused)
    Test::More::is(scalar(grep { /busy, 1 private-key tasks running and \d+ requests waiting/ } @lines),
                   $busy, "each says: 1 task running (the bound)");
}
--- no_error_log
[error]



=== TEST 3: mdm_scep_concurrency 2: never more than 2 tasks in the pool
--- redis_setup eval
::challenges()
--- request
GET /scep/two?operation=GetCACaps
--- error_code: 200
--- after_each eval
sub {
    my $busy = ::burst($_[0], '/scep/two', 1);
    my $log = t::MDM::_slurp($Test::Nginx::Socket::ErrLogFile) // '';
    my @lines = $log =~ /^.*\[warn\].*SCEP request refused \(503\): busy.*$/mg;
    Test::More::is(scalar(grep { /busy, 2 private-key tasks running/ } @lines),
                   $busy, "each 503 says: 2 tasks running (the bound)");
}
--- no_error_log
[error]



=== TEST 4: configuration: mdm_scep_concurrency 0
--- config
location = /s { mdm_scep; mdm_scep_ca $TEST_NGINX_CONC/ca.pem $TEST_NGINX_CONC/ca.key; mdm_scep_concurrency 0; }
--- must_die
--- error_log eval
qr/\[emerg\] .*mdm_scep_concurrency must be 1 to 1024, mdm_scep_queue 0 to 65536/
