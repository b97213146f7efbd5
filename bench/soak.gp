# The soak run over time (bench/soak.sh): throughput, latency, memory and descriptors, table
# sizes.   gnuplot -e "csv='target/soak/soak.csv'; png='docs/soak.png'" bench/soak.gp
if (!exists("csv")) csv = 'target/soak/soak.csv'
if (!exists("png")) png = 'docs/soak.png'
set terminal pngcairo size 1200,1000 font ",10" noenhanced
set output png
set datafile separator ","
set key below horizontal font ",9"
set xrange [0:*]
set grid
set xlabel "minutes"
set multiplot layout 2,2 title "portcullis soak: release server on PostgreSQL, mixed load, 10-s samples"

set title "operations/s by kind"
set ylabel "ops/s"
set yrange [0:*]
plot csv using ($1/60):"cc_rps" with lines lw 1.5 title "client_credentials", \
     "" using ($1/60):"code_rps" with lines title "code flow", \
     "" using ($1/60):"refresh_rps" with lines title "refresh", \
     "" using ($1/60):"introspect_rps" with lines title "introspect", \
     "" using ($1/60):"admin_rps" with lines title "admin API"

set title "p99 latency by kind (10-s windows)"
set ylabel "ms"
set logscale y
set yrange [*:*]
plot csv using ($1/60):"cc_p99_ms" with lines lw 1.5 title "client_credentials", \
     "" using ($1/60):"code_p99_ms" with lines title "code flow", \
     "" using ($1/60):"refresh_p99_ms" with lines title "refresh", \
     "" using ($1/60):"introspect_p99_ms" with lines title "introspect", \
     "" using ($1/60):"admin_p99_ms" with lines title "admin API"
unset logscale y

set title "server memory and descriptors"
set ylabel "RSS (MiB)"
set y2label "open descriptors, DB connections"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
plot csv using ($1/60):(column("rss_kib")/1024) with lines lw 2 title "RSS (MiB)", \
     "" using ($1/60):"fds" axes x1y2 with lines lw 1.5 title "open fds", \
     "" using ($1/60):"pg_conns" axes x1y2 with lines title "DB connections"
unset y2tics
unset y2label
set ytics mirror

set title "rows in the tables that grow"
set ylabel "rows"
set logscale y
set yrange [1:*]
plot csv using ($1/60):(column("refresh_tokens")+1) with lines lw 1.5 title "refresh_tokens", \
     "" using ($1/60):(column("grants")+1) with lines title "grants (codes, families)", \
     "" using ($1/60):(column("revoked_tokens")+1) with lines title "revoked jtis", \
     "" using ($1/60):(column("sessions")+1) with lines title "sessions", \
     "" using ($1/60):(column("audit_events")+1) with lines title "audit_events", \
     "" using ($1/60):(column("client_secrets")+1) with lines title "client_secrets"
unset multiplot
