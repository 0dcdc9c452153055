# Shared by the API tests (t/api*.t): api() to call the API from Perl, and
# the `--- json eval` block section that checks a JSON response. Load it
# after t::MDM:
#
#     use Test::Nginx::Socket 'no_plan';
#     use t::MDM;
#     use t::MDMApi;
#     api_defaults('the-key');     # $::KEY, $::AUTH, nginx.conf
#
# Everything is defined in package main, as the test files use it; api()
# sends $::AUTH unless given auth => HEADER.

package main;

use strict;
use warnings;

use B ();
use JSON::PP ();
use MIME::Base64 ();
use POSIX ();
use Time::HiRes ();
use Scalar::Util qw(blessed);

# ---------------------------------------------------------------------------
# Talking to the API from Perl (for requests that depend on earlier answers)
# ---------------------------------------------------------------------------

# api($method, $path, $body, auth => HEADER) -> { status, headers, body,
# json } (json undef if the body is not JSON)
sub api {
    my ($method, $path, $body, %opt) = @_;
    my ($k, $v) = split /:\s*/, $opt{auth} // $::AUTH, 2;
    my $res = concurrent_requests(server_port(),
        [ http_request($method, $path, $body, [ $k => $v ]) ])->[0];
    die "api $method $path: $res->{error}\n" if $res->{error};
    $res->{json} = eval { JSON::PP->new->decode($res->{body}) };
    return $res;
}

# ---------------------------------------------------------------------------
# --- json eval: checks of a JSON response
# ---------------------------------------------------------------------------
#
# The section gives an expected value (or, for a block with several
# requests, an arrayref with one per request; undef skips one). The
# response must be JSON (Content-Type application/json) and match:
#   hashref      an object with at least these keys, each matching
#   exact({..})  an object with exactly these keys
#   arrayref     an array of that length, element by element
#   qr//         a string matching it
#   num(X)       a JSON number (not a string), matching X if given
#   JSON::PP::true / false   that boolean
#   absent()     (as a hash value) the key must not be there
#   undef        null
#   all_of(A, B) matching every one of them
#   coderef      called with the decoded value and the raw body; true = ok
#                (it may run its own tests too)
#   scalar       equal as a string
# The decoded body of the last response is kept in $::J.

our $J;

sub exact  { return bless { %{ $_[0] } }, 'main::Exact' }
sub absent { return bless {}, 'main::Absent' }
sub num    { return bless [ @_ ], 'main::Num' }
sub all_of { return bless [ @_ ], 'main::All' }

sub _show {
    my ($v) = @_;
    return 'null' unless defined $v;
    return 'absent' if ref $v eq 'main::Absent';
    return JSON::PP->new->canonical->allow_nonref->allow_blessed->encode($v)
        if ref $v;
    return "'$v'";
}

sub _is_json_number {
    my $f = B::svref_2object(\$_[0])->FLAGS;
    return ($f & (B::SVp_IOK | B::SVp_NOK)) && !($f & B::SVp_POK);
}

sub json_diff {
    my ($got, $exp, $path) = @_;
    $path //= '$';

    if (ref $exp eq 'CODE') {
        return $exp->($got, $::JBody) ? () : ("$path: check failed on " . _show($got));
    }
    if (ref $exp eq 'main::All') {
        return map { json_diff($got, $_, $path) } @$exp;
    }
    if (ref $exp eq 'main::Num') {
        return ("$path: want a number, got " . _show($got))
            unless defined $got && !ref $got && _is_json_number($got);
        return @$exp ? json_diff($got, $exp->[0], $path) : ();
    }
    if (ref $exp eq 'Regexp') {
        return (defined $got && !ref $got && $got =~ $exp)
             ? () : ("$path: " . _show($got) . " does not match $exp");
    }
    if (blessed $exp && $exp->isa('JSON::PP::Boolean')) {
        return (blessed $got && $got->isa('JSON::PP::Boolean')
                && !!$got == !!$exp)
             ? () : ("$path: want " . ($exp ? 'true' : 'false') . ', got '
                     . _show($got));
    }
    return defined $got ? ("$path: want null, got " . _show($got)) : ()
        unless defined $exp;

    if (ref $exp eq 'HASH' || ref $exp eq 'main::Exact') {
        return ("$path: want an object, got " . _show($got))
            unless ref $got eq 'HASH';
        my @d;
        for my $k (sort keys %$exp) {
            my $e = $exp->{$k};
            if (ref $e eq 'main::Absent') {
                push @d, "$path.$k: must be absent, got " . _show($got->{$k})
                    if exists $got->{$k};
                next;
            }
            if (!exists $got->{$k}) {
                push @d, "$path.$k: missing";
                next;
            }
            push @d, json_diff($got->{$k}, $e, "$path.$k");
        }
        if (ref $exp eq 'main::Exact') {
            push @d, "$path.$_: unexpected key" for grep { !exists $exp->{$_} } sort keys %$got;
        }
        return @d;
    }
    if (ref $exp eq 'ARRAY') {
        return ("$path: want an array of " . @$exp . ', got ' . _show($got))
            unless ref $got eq 'ARRAY' && @$got == @$exp;
        return map { json_diff($got->[$_], $exp->[$_], "$path\[$_]") } 0 .. $#$exp;
    }
    return (defined $got && !ref $got && "$got" eq "$exp")
         ? () : ("$path: want '$exp', got " . _show($got));
}

our $JBody;

add_response_body_check(sub {
    my ($block, $body, $i, $rep, $dry) = @_;
    my $spec = t::MDM::_section($block, 'json');
    return if $dry || !defined $spec;
    my $name = $block->name;

    my $n = t::MDM::_request_count($block);
    if ($n > 1) {
        die "$name - --- json eval must be an arrayref with one entry per request\n"
            unless ref $spec eq 'ARRAY';
        $spec = $spec->[$i];
        return unless defined $spec;
    }

    $JBody = $body;
    my $got = eval { JSON::PP->new->decode($body) };
    if (!defined $got) {
        Test::More::fail("$name - json (req $i): body is not JSON");
        Test::More::diag("body: " . substr($body // '', 0, 300));
        return;
    }
    $J = $got;
    my @d = json_diff($got, $spec);
    Test::More::ok(!@d, "$name - json (req $i)")
        or Test::More::diag(join "\n", @d[0 .. ($#d < 9 ? $#d : 9)]);
});


# ---------------------------------------------------------------------------
# The usual API test file: api_defaults(KEY)
# ---------------------------------------------------------------------------

# Sets $::KEY and $::AUTH (the Basic header for that key) and the blocks'
# defaults: the test Redis, /v1/ served by mdm_api with that key, $::AUTH
# sent with every request that sets no Content-Type of its own.
sub api_defaults {
    my ($key) = @_;
    $::KEY = $key;
    $::AUTH = 'Authorization: Basic ' . MIME::Base64::encode_base64("nanomdm:$key", '');
    mdm_defaults(
        http_config => 'mdm_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;',
        config => "location /v1/ { mdm_api; mdm_api_key $key; }",
        more_headers => $::AUTH,
    );
}



# ---------------------------------------------------------------------------
# The worker's half of a job queue the module polls replies of (the DEP
# proxy's D4, VPP's V2): the contract played by a child, not a mock of our
# code. The test file sets $::JOBQ (the list), $::REPLY (the reply key
# without the job's id) and $::JOBS (a file).
# ---------------------------------------------------------------------------

# fake_worker(n => N, reply => CODE, delay => S): in a child, takes up to N
# jobs (BLPOP, 10 s each at most), records each to $::JOBS (one JSON per
# line) and SETs reply->($job) (a hashref or a string; undef: no answer)
# after S seconds. The child's pid goes to @::KIDS.
sub fake_worker {
    my (%o) = @_;
    my $n = $o{n} // 1;
    unlink $::JOBS;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        local $t::MDM::RedisTimeout = 15;
        eval {
            for (1 .. $n) {
                my $r = redis('BLPOP', $::JOBQ, 10);
                last unless $r;
                my $job = JSON::PP->new->decode($r->[1]);
                open my $fh, '>>', $::JOBS or die;
                print {$fh} "$r->[1]\n";
                close $fh;
                Time::HiRes::sleep($o{delay}) if $o{delay};
                my $reply = $o{reply}->($job);
                next unless defined $reply;
                redis('SET', "$::REPLY$job->{id}",
                      ref $reply ? JSON::PP->new->encode($reply) : $reply, 'EX', 120);
            }
        };
        POSIX::_exit(0);
    }
    push @::KIDS, $pid;
    return $pid;
}

# the jobs the child took so far
sub jobs {
    open my $fh, '<', $::JOBS or return [];
    return [ map { JSON::PP->new->decode($_) } <$fh> ];
}

sub reap { waitpid($_, 0) for @::KIDS; @::KIDS = () }

END { kill 'TERM', @::KIDS if @::KIDS }


{
    no strict 'refs';
    *{"Test::Base::Filter::$_"} = \&{"main::$_"}
        for qw(api exact absent num all_of json_diff);
}

1;
