// Usage page: daily spend by SKU as a stacked bar chart (Chart.js, served locally).
(function () {
  "use strict";
  const canvas = document.getElementById("usage-chart");
  if (!canvas || !window.Chart) return;
  function shortDate(iso) {
    const [year, month, day] = iso.split("-").map(Number);
    return new Date(Date.UTC(year, month - 1, day)).toLocaleDateString(undefined, {
      month: "short",
      day: "numeric",
      timeZone: "UTC",
    });
  }
  const palette = ["#5046e5", "#22c3ee", "#f59e0b", "#10b981", "#ef4444", "#a855f7", "#64748b", "#ec4899"];

  fetch(canvas.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((response) => response.json())
    .then(function (data) {
      const datasets = data.datasets.map(function (set, i) {
        return {
          label: set.label,
          data: set.data.map(Number),
          backgroundColor: palette[i % palette.length],
          borderRadius: 3,
          maxBarThickness: 28,
        };
      });
      const chart = new window.Chart(canvas, {
        type: "bar",
        data: { labels: data.labels.map(shortDate), datasets: datasets },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          interaction: { mode: "index", intersect: false },
          scales: {
            x: { stacked: true, grid: { display: false } },
            y: { stacked: true, beginAtZero: true, ticks: { callback: (v) => "$" + Number(v.toPrecision(6)) } },
          },
          plugins: {
            legend: { position: "bottom", labels: { boxWidth: 12, boxHeight: 12 } },
            tooltip: {
              callbacks: {
                label: (ctx) => `${ctx.dataset.label}: $${ctx.parsed.y.toPrecision(4)}`,
              },
            },
          },
        },
      });
      canvas.dataset.ready = "true";
      canvas.dataset.series = String(chart.data.datasets.length);
    })
    .catch(function (err) {
      console.error(err);
    });
})();
