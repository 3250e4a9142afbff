/** A set of user numbers with O(1) add, remove and pick-by-position; one Int32Array pair, no objects. */
export class UserSet {
  private readonly items: Int32Array;
  private readonly position: Int32Array;
  size = 0;

  constructor(maxUser: number) {
    this.items = new Int32Array(maxUser + 1);
    this.position = new Int32Array(maxUser + 1).fill(-1);
  }

  has(user: number): boolean {
    return this.position[user] !== -1;
  }

  add(user: number): void {
    if (this.has(user)) return;
    this.items[this.size] = user;
    this.position[user] = this.size;
    this.size++;
  }

  delete(user: number): void {
    const p = this.position[user] ?? -1;
    if (p === -1) return;
    this.size--;
    const last = this.items[this.size]!;
    this.items[p] = last;
    this.position[last] = p;
    this.position[user] = -1;
  }

  at(index: number): number {
    return this.items[index]!;
  }
}
