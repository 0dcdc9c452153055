# Self-test of t/lib/Test/Nginx/Socket.pm (our Test::Nginx subset) against
# the stock nginx binary; no module of ours is needed.
#
#     cd /work/main && prove -I t/lib t/harness.t
#
# Besides ordinary blocks it checks the harness's own contract: preprocessor
# and response-body-check call order and arguments, the generated nginx.conf,
# forced failures of timed-out requests (run as TODO tests, then verified),
# and that nginx is gone at the end.

use Test::Nginx::Socket 'no_plan';
use IO::Socket::INET ();

our (@Events, @Calls, %Seen, $Conf, $PidBefore, $LastPid, $TodoOut, @TodoDiag,
     $InTodo);

# A socket that accepts connections into its backlog but never answers:
# proxying to it makes a request hang, to exercise the client timeout.
our $Hang = IO::Socket::INET->new(Listen => 5, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp')
    or die "cannot create the hanging listener: $!";
$ENV{TEST_NGINX_HANG_PORT} = $Hang->sockport;

$ENV{HARNESS_ENV_VAR} = 'yes';
env_to_nginx('HARNESS_ENV_VAR');

my $tb = Test::More->builder;

add_block_preprocessor(sub {
    my $block = shift;

    push @Events, [pre => $block->name];

    # --- repeat: N is this file's own section: repeat_each for one block.
    repeat_each($block->repeat || 1);

    # --- master: on
    if (($block->master // '') eq 'on') { master_on() } else { master_off() }

    # --- fake_load_module: pretend TEST_NGINX_LOAD_MODULES was set.
    $Test::Nginx::Socket::LoadModules = $block->fake_load_module;

    # --- add_pre_header: the preprocessor may rewrite sections.
    if (defined(my $v = $block->add_pre_header)) {
        my $mh = $block->more_headers // '';
        $block->set_value(more_headers => "${mh}X-Pre: $v\n");
    }

    # --- expect_failure: the block's tests run as TODO tests and their
    # diagnostics are captured; both are verified after run_tests().
    end_todo();
    if (defined $block->expect_failure) {
        $tb->todo_start('expected failure (harness self-test)');
        $TodoOut = '';
        $tb->todo_output(\$TodoOut);
        $InTodo = 1;
    }
});

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;
    my $last = ($tb->details)[-1];
    push @Events, [check => $block->name];

    if (open my $in, '<', server_root() . '/logs/nginx.pid') {
        chomp($LastPid = <$in> // '');
    }

    push @Calls, {
        block => $block->name, body => $body, req => $req_idx,
        rep => $repeated_req_idx, dry_run => $dry_run,
        last_test => $last ? $last->{name} : '',
    };

    # A check may emit tests of its own (t/MDM.pm does Redis assertions).
    if (defined(my $len = $block->body_length)) {
        my @lens = split ' ', $len;
        is(length($body // ''), $lens[$req_idx],
           $block->name . " - body length from add_response_body_check "
           . "(req $req_idx)");
    }
});

no_shuffle();
run_tests();
end_todo();

sub end_todo {
    return unless $InTodo;
    $tb->todo_end;
    $tb->todo_output(\*STDOUT);
    push @TodoDiag, $TodoOut;
    $InTodo = 0;
}

# ---------------------------------------------------------------------------
# Checks of the harness itself.
# ---------------------------------------------------------------------------

sub calls_of ($) {
    my $re = shift;
    return [ map { [$_->{req}, $_->{rep}] } grep { $_->{block} =~ $re } @Calls ];
}

# Preprocessors run right before their block: the events must come as
# pre(A) check(A)... pre(B) check(B)..., never interleaved.
{
    my (@order, %done, $cur, $bad);
    for my $ev (@Events) {
        my ($type, $name) = @$ev;
        if ($type eq 'pre') {
            $bad = "preprocessor ran twice for $name" if $done{$name}++;
            $cur = $name;
            push @order, $name;
        } elsif (!defined $cur || $name !~ /\Q$cur\E$/) {
            $bad = "body check for '$name' while '" . ($cur // '') . "' runs";
        }
    }
    ok(!$bad, "harness - preprocessor runs right before each block")
        or diag $bad;
    ok(!grep(/SKIPPED/, @order), "harness - --- SKIP blocks are dropped");
    ok(!grep(/AFTER LAST/, @order), "harness - --- LAST stops the run");
    like($order[-1] // '', qr/LAST block$/, "harness - the LAST block ran");
}

is_deeply(calls_of(qr/request array/), [[0, 0], [1, 0], [2, 0]],
          "harness - body check called once per request with req_idx");
is_deeply(calls_of(qr/pipelined/), [[0, 0], [1, 0], [2, 0]],
          "harness - body check called per pipelined response");
is_deeply(calls_of(qr/repeat_each via/), [[0, 0], [1, 0], [0, 1], [1, 1]],
          "harness - body check gets repeated_req_idx");
is_deeply([ map { $_->{body} } grep { $_->{block} =~ /request array/ } @Calls ],
          ["a 1\n", "nf\n", "a 3\n"],
          "harness - body check receives the response body");
ok(!grep({ $_->{dry_run} } @Calls), "harness - dry_run is false");

# The body check runs after that request's status/header/body checks.
{
    my @arr = grep { $_->{block} =~ /request array/ } @Calls;
    my @bad = grep {
        $_->{last_test} !~ /response_body - (?:like|response is expected) \(repeated req 0, req $_->{req}\)$/
    } @arr;
    ok(@arr && !@bad, "harness - body check runs after the body check of its request")
        or diag Test::More::explain(\@bad);
}

# Expected failures: the request timed out / got no response, the status
# check failed (as a TODO test here) and said why.
{
    my @todo = grep { $_->{type} eq 'todo' } $tb->details;
    my @hang = grep { $_->{name} =~ /client timeout - status code ok/ } @todo;
    ok(@hang == 1 && !$hang[0]{actual_ok},
       "harness - a timed-out request fails its status check");
    my @closed = grep { $_->{name} =~ /no response, 200 expected - status code ok/ } @todo;
    ok(@closed == 1 && !$closed[0]{actual_ok},
       "harness - a request closed without response fails its status check");
    my $diag = join '', @TodoDiag;
    like($diag, qr/request 0 failed: client socket timed out after 0\.3s/,
         "harness - the timeout is explained");
    like($diag, qr/connection closed by the server without a response/,
         "harness - the missing response is explained");
}

# The generated nginx.conf (captured by TEST 1's init).
{
    my $root = server_root();
    my $port = server_port();
    like($Conf, qr/\Aworker_processes\s+1;\ndaemon on;\nmaster_process off;\n/,
         "harness - conf: process directives first");
    like($Conf, qr{^error_log \Q$root\E/logs/error\.log debug;$}m, "harness - conf: error_log");
    like($Conf, qr{^pid\s+\Q$root\E/logs/nginx\.pid;$}m, "harness - conf: pid");
    like($Conf, qr/^env HARNESS_ENV_VAR;$/m, "harness - conf: env_to_nginx");
    like($Conf, qr{^\s+access_log \Q$root\E/logs/access\.log;$}m, "harness - conf: access_log");
    for my $t (qw(client_body proxy fastcgi uwsgi scgi)) {
        like($Conf, qr{^\s+${t}_temp_path \Q$root\E/${t}_temp;$}m, "harness - conf: ${t}_temp_path");
    }
    like($Conf, qr/^\s+keepalive_timeout\s+68000ms;$/m, "harness - conf: keepalive_timeout");
    like($Conf, qr/^\s+listen\s+127\.0\.0\.1:$port;$/m, "harness - conf: listen");
    like($Conf, qr/^\s+server_name\s+'localhost';$/m, "harness - conf: server_name");
    like($Conf, qr/^\s+client_max_body_size 30M;$/m, "harness - conf: client_max_body_size");
    like($Conf, qr{location / \{\s+root \Q$root\E/html;}, "harness - conf: root location");
    like($Conf, qr/^events \{\s+accept_mutex off;\s+worker_connections\s+64;\s+\}/m,
         "harness - conf: events");
    if ($> == 0) {
        like($Conf, qr/^user root;$/m, "harness - conf: user root when run as root");
    }
    is($ENV{TEST_NGINX_SERVER_ROOT}, $root, "harness - TEST_NGINX_SERVER_ROOT exported");
    is($ENV{TEST_NGINX_SERVER_PORT}, $port, "harness - TEST_NGINX_SERVER_PORT exported");
}

ok($Seen{init_ran}, "harness - init ran after nginx was up");
ok($Seen{reused}, "harness - a block without config reuses the running nginx");

SKIP: {
    skip "TEST_NGINX_NO_CLEAN is set", 2 if $ENV{TEST_NGINX_NO_CLEAN};
    ok(!-e server_root() . "/logs/nginx.pid", "harness - pid file gone after run_tests");
    ok($LastPid && (!kill(0, $LastPid) || do {
           # a daemon's zombie may linger until PID 1 reaps it
           open my $st, '<', "/proc/$LastPid/stat";
           (<$st> // '') =~ /\)\s+[ZX]\s/;
       }), "harness - nginx stopped after the last block");
}

__DATA__

=== TEST 1: sanity
--- config
    location = /t {
        return 200 "hello\n";
    }
--- init
use IO::Socket::INET;
IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                      PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
    or die "nginx is not up yet";
open my $in, '<', "$ENV{TEST_NGINX_SERVER_ROOT}/conf/nginx.conf" or die $!;
$main::Conf = do { local $/; <$in> };
$main::Seen{init_ran} = 1;
--- request
GET /t
--- response_headers
Content-Type: text/plain
--- response_body
hello
--- no_error_log
[error]



=== TEST 2: response_headers, !Name, repeated headers
--- config
    location = /h {
        add_header X-Foo bar;
        add_header X-Multi a;
        add_header X-Multi b;
        return 200 "ok";
    }
--- request
GET /h
--- response_headers
X-Foo: bar
x-multi: a, b
!X-Absent
Content-Length: 2
--- raw_response_headers_like: ^HTTP/1\.1 200 OK\r\n.*Server: nginx
--- response_body chomp
ok



=== TEST 3: response_headers_like, response_body_like
--- config
    location = /h {
        return 200 "some body text\n";
    }
--- request
GET /h
--- response_headers_like
Server: nginx/\d+\.\d+\.\d+
Content-Type: text/.*
--- response_body_like: ^some .* text$



=== TEST 4: missing file: 404 + error_log + grep_error_log
--- config
    location /files/ {
        root html;
    }
--- request
GET /files/nope.html
--- error_code: 404
--- response_body_like: 404 Not Found
--- error_log
No such file or directory
[error]
--- grep_error_log eval: qr/open\(\) "[^"]+" failed/
--- grep_error_log_out
open() "$TEST_NGINX_SERVER_ROOT/html/files/nope.html" failed



=== TEST 5: return 500, error_log patterns as eval qr//
--- config
    location = /fail {
        return 500;
    }
    location = /files/nope.html {
        root html;
    }
--- request eval
["GET /fail", "GET /files/nope.html"]
--- error_code eval
[500, 404]
--- response_body_like eval
["500 Internal Server Error", "404 Not Found"]
--- no_error_log eval
[qr/\[(?:alert|crit|emerg)\]/]



=== TEST 6: request body trimmed, Content-Length, more_headers, Host, Connection
--- config
    location = /echo {
        return 200 "len=$http_content_length foo=$http_x_foo host=$host conn=$http_connection pre=$http_x_pre\n";
    }
--- init
$main::PidBefore = do {
    open my $in, '<', "$ENV{TEST_NGINX_SERVER_ROOT}/logs/nginx.pid" or die $!;
    scalar <$in>;
};
chomp $main::PidBefore;
--- request
POST /echo
   hello world   

--- more_headers
X-Foo: bar
# a comment, ignored
--- add_pre_header: added
--- response_body
len=11 foo=bar host=localhost conn=close pre=added



=== TEST 7: no config: previous nginx reused; more_headers override Host
--- init
open my $in, '<', "$ENV{TEST_NGINX_SERVER_ROOT}/logs/nginx.pid" or die $!;
chomp(my $pid = <$in>);
$main::Seen{reused} = $pid eq $main::PidBefore;
--- request
GET /echo HTTP/1.0
--- more_headers
Host: example.com
Connection: Close
--- response_body
len= foo= host=example.com conn=Close pre=



=== TEST 8: request array, per-request error_code/response_body/more_headers
--- config
    location = /a {
        return 200 "a $http_x_n\n";
    }
    location = /b {
        return 404 "nf\n";
    }
--- request eval
["GET /a", "GET /b", "GET /a"]
--- more_headers eval
["X-N: 1", "X-N: 2", "X-N: 3"]
--- error_code eval
[200, 404, 200]
--- response_body eval
["a 1\n", qr/^nf$/, "a 3\n"]
--- body_length: 4 3 4
--- no_error_log
[error]



=== TEST 9: pipelined requests
--- pipelined_requests eval
["GET /a", "GET /b", "GET /a"]
--- more_headers eval
["X-N: p1", "X-N: p2", "X-N: p3"]
--- error_code eval
[200, 404, 200]
--- response_body eval
["a p1\n", qr/^nf\n\z/, "a p3\n"]



=== TEST 10: raw_request split into packets
--- config
    location = /t {
        return 200 "raw $request_method $server_protocol $http_host\n";
    }
--- raw_request eval
["GET /t HTT", "P/1.0\r\nHost: x\r\n\r\n"]
--- raw_request_middle_delay: 0.01
--- response_body
raw GET HTTP/1.0 x



=== TEST 11: request packets get the default headers
--- request eval
[["GE", "T /t"]]
--- response_body
raw GET HTTP/1.1 localhost



=== TEST 12: response_body eval qr//, response_body_unlike, filters
--- config
    location = /t {
        return 200 "Hello World\n";
    }
--- request eval
["GET /t", "GET /t"]
--- response_body eval
[qr/^Hello W\w+$/, "HELLO WORLD\n"]
--- response_body_filters eval
[[], ["uc"]]



=== TEST 13: response_body_unlike
--- request
GET /t
--- response_body_unlike: goodbye



=== TEST 14: chunked response is decoded
--- config
    location = /chunked {
        sub_filter_types *;
        sub_filter 'world' 'there';
        return 200 "hello world\n";
    }
--- request
GET /chunked
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body
hello there



=== TEST 15: user_files
--- config
--- user_files
>>> foo.txt
hello file
>>> sub/dir/bar.txt
bar
--- request eval
["GET /foo.txt", "GET /sub/dir/bar.txt", "GET /"]
--- response_body eval
["hello file\n", "bar\n", qr/It works!/]



=== TEST 16: must_die with a bad directive
--- config
    this_is_not_a_directive;
--- must_die
--- suppress_stderr
--- error_log
[emerg]
unknown directive "this_is_not_a_directive"



=== TEST 17: TEST_NGINX_LOAD_MODULES goes first in nginx.conf
--- fake_load_module: /nonexistent/ngx_fake_module.so
--- config
--- must_die
--- suppress_stderr
--- error_log eval
[qr{\[emerg\] .*dlopen\(\) "/nonexistent/ngx_fake_module\.so" failed .* in \S+/conf/nginx\.conf:1$}]



=== TEST 18: main/http/post_main config, $TEST_NGINX_* and RAND_PORT
--- main_config
worker_rlimit_nofile 1024;
--- http_config
    map $uri $mapped {
        default "from-map";
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;

        location / {
            return 200 "backend $server_port\n";
        }
    }
--- post_main_config
pcre_jit on;
--- config
    location = /m {
        return 200 "$mapped port=$TEST_NGINX_SERVER_PORT\n";
    }
    location = /proxy {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
    }
--- request eval
["GET /m", "GET /proxy"]
--- response_body eval
['from-map port=$TEST_NGINX_SERVER_PORT' . "\n", qr/^backend (?!\Q$ENV{TEST_NGINX_SERVER_PORT}\E)\d+\n\z/]



=== TEST 19: error_log only sees what was logged since the last check
--- config
    location /files/ {
        root html;
    }
--- request eval
["GET /files/a.html", "GET /files/b.html"]
--- error_code eval
[404, 404]
--- response_body_like eval
["Not Found", "Not Found"]
--- error_log
No such file or directory
--- grep_error_log: No such file or directory
--- grep_error_log_out
No such file or directory



=== TEST 20: repeat_each via preprocessor, log_level section
--- repeat: 2
--- log_level: warn
--- config
    location = /a {
        return 200 "a\n";
    }
--- request eval
["GET /a", "GET /a"]
--- response_body eval
["a\n", "a\n"]
--- no_error_log
[debug]
[notice]



=== TEST 21: client timeout
--- expect_failure
--- config
    location = /hang {
        proxy_pass http://127.0.0.1:$TEST_NGINX_HANG_PORT;
    }
--- request
GET /hang
--- timeout: 300ms



=== TEST 22: abort + ignore_response: a timeout is expected, nothing fails
--- request
GET /hang
--- timeout: 0.2
--- abort
--- ignore_response
--- no_error_log
[alert]



=== TEST 23: connection closed without response, empty error_code expected
--- config
    location = /close {
        return 444;
    }
--- request
GET /close
--- error_code:



=== TEST 24: no response, 200 expected
--- expect_failure
--- request
GET /close



=== TEST 25: master_on, wait, shutdown_error_log
--- master: on
--- config
    location = /t {
        return 200 "master\n";
    }
--- request
GET /t
--- wait: 0.05
--- response_body
master
--- shutdown_error_log
signal 3 (SIGQUIT) received
--- no_shutdown_error_log
[alert]



=== TEST 26: SKIPPED block is never run
--- SKIP
--- config
    this_is_not_a_directive;
--- request
GET /



=== TEST 27: LAST block
--- LAST
--- config
    location = /t {
        return 200 "last\n";
    }
--- request
GET /t
--- response_body
last



=== TEST 28: AFTER LAST, never run
--- config
    this_is_not_a_directive;
--- request
GET /
